/**
 * Opt-in: a real `AssumeRoleWithWebIdentity` against AWS. `Delivery.test.ts` registers these
 * only when `AAP_LIVE_AWS=1`; otherwise no such test exists (nothing is skipped or claimed).
 *
 * Needs (see docs/delivery.md, "Live AWS test"):
 * - `AAP_LIVE_OIDC_ISSUER`: an https issuer URL whose discovery document and JWKS are already
 *   published (e.g. a public bucket), registered in IAM as an OIDC provider with audience
 *   `sts.amazonaws.com`;
 * - `AAP_LIVE_OIDC_KEYRING`: the issuer keyring JSON (as stored in the vault) whose public keys
 *   that JWKS publishes;
 * - `AAP_LIVE_ROLE_ARN`: a role trusting that provider (`aud` = sts.amazonaws.com,
 *   `sub` = agent:codex) and allowing `sts:TagSession`;
 * - `AWS_REGION` (default eu-central-1).
 */

import { AuditLog } from "@aap/audit"
import { Catalog } from "@aap/catalog"
import { SystemKeys } from "@aap/key-custody"
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Redacted, Schema } from "effect"
import * as CoordinationStore from "../../../src/CoordinationStore.js"
import * as CurrentCatalog from "../../../src/CurrentCatalog.js"
import * as Delivery from "../../../src/Delivery.js"
import * as AwsCredentials from "../../../src/delivery/AwsCredentials.js"
import * as OidcIssuer from "../../../src/delivery/OidcIssuer.js"
import * as Ports from "../../../src/delivery/Ports.js"
import * as ProvisionedKeys from "../../../src/delivery/ProvisionedKeys.js"
import * as Provisioner from "../../../src/delivery/Provisioner.js"

export const registerLiveAwsTests = (): void => {
  const issuer = process.env.AAP_LIVE_OIDC_ISSUER ?? ""
  const keyring = process.env.AAP_LIVE_OIDC_KEYRING ?? ""
  const roleArn = process.env.AAP_LIVE_ROLE_ARN ?? ""
  const region = process.env.AWS_REGION ?? "eu-central-1"

  describe("live AWS (AAP_LIVE_AWS=1)", () => {
    it.live("AssumeRoleWithWebIdentity with our token returns working, scoped credentials", () =>
      Effect.gen(function* () {
        assert.isNotEmpty(issuer, "AAP_LIVE_OIDC_ISSUER is required")
        assert.isNotEmpty(keyring, "AAP_LIVE_OIDC_KEYRING is required")
        assert.isNotEmpty(roleArn, "AAP_LIVE_ROLE_ARN is required")
        const catalog = Schema.decodeUnknownSync(Catalog.Catalog)({
          schemaVersion: 1,
          agents: [{ id: "codex", wallet: "codex" }],
          operators: [{ id: "alice" }],
          capabilities: [
            {
              id: "live-sts",
              tier: "low",
              agents: ["codex"],
              ttl: { default: "15m", max: "1h" },
              backing: {
                type: "aws-sts",
                roleArn,
                region,
                statements: [{ actions: ["sts:GetCallerIdentity"], resources: ["*"] }]
              }
            }
          ]
        })
        const now = yield* DateTime.now
        const session: Ports.SessionView = {
          id: `ses_live${Date.now().toString(36).padStart(22, "0")}`,
          agent: "codex",
          wallet: "codex",
          capability: "live-sts",
          tier: "low",
          status: "active",
          expiresAt: DateTime.add(now, { minutes: 16 })
        }
        const layer = Delivery.layer.pipe(
          Layer.provideMerge(OidcIssuer.layer({ issuer })),
          Layer.provideMerge(
            Layer.mergeAll(
              Ports.sessionsFromMap(new Map([[session.id, session]])),
              CurrentCatalog.layer(catalog),
              Ports.secretsMemory([[OidcIssuer.SYSTEM_WALLET, OidcIssuer.SIGNING_KEY_SECRET, keyring]]),
              AwsCredentials.layerStsClients,
              Layer.succeed(Provisioner.Provisioner, {
                provider: "none",
                mint: () => Effect.die("unused"),
                revoke: () => Effect.die("unused")
              }),
              ProvisionedKeys.layer.pipe(
                Layer.provide(Layer.merge(CoordinationStore.layerMemory, SystemKeys.layerMemory))
              ),
              Delivery.layerConfigWith({}),
              AuditLog.layerMemory
            )
          )
        )
        const out = yield* Effect.flatMap(Delivery.Delivery, (d) =>
          d.deliver({ _tag: "agent", id: "codex", wallet: "codex" }, session.id, {})
        ).pipe(Effect.provide(layer))
        if (out.credential._tag !== "aws-sts") return assert.fail("expected aws-sts")
        const creds = out.credential
        const client = new STSClient({
          region,
          credentials: {
            accessKeyId: creds.accessKeyId,
            secretAccessKey: Redacted.value(creds.secretAccessKey),
            sessionToken: Redacted.value(creds.sessionToken)
          }
        })
        const who = yield* Effect.promise(() => client.send(new GetCallerIdentityCommand({})))
        client.destroy()
        assert.include(who.Arn ?? "", AwsCredentials.roleSessionName(session.id, "codex"))
      })
    )
  })
}
