/**
 * Delivery of a capability with a `proxy` block, with `EgressProxy` present: the agent gets the
 * proxy URL and a proxy token (never the key), the delivery is audited, and the token opens
 * the proxy for that session.
 */
import { AuditLog, AuditReader } from "@aap/audit"
import { SystemKeys } from "@aap/key-custody"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Redacted, Schema, TestClock } from "effect"
import * as CoordinationStore from "../../src/CoordinationStore.js"
import * as CurrentCatalog from "../../src/CurrentCatalog.js"
import * as Delivery from "../../src/Delivery.js"
import { DeliveredCredential } from "../../src/delivery/Api.js"
import * as AwsCredentials from "../../src/delivery/AwsCredentials.js"
import * as OidcIssuer from "../../src/delivery/OidcIssuer.js"
import * as Ports from "../../src/delivery/Ports.js"
import * as ProvisionedKeys from "../../src/delivery/ProvisionedKeys.js"
import * as Provisioner from "../../src/delivery/Provisioner.js"
import * as EgressProxy from "../../src/proxy/EgressProxy.js"
import * as H from "../delivery/support/harness.js"

const KEY = "CANARY-anthropic-never-delivered"

const makeLayer = (sessions: Map<string, Ports.SessionView>) => {
  const deps = Layer.mergeAll(
    Ports.sessionsFromMap(sessions),
    CurrentCatalog.layer(H.catalog),
    H.vaultSecrets,
    AwsCredentials.layerStsClients,
    Layer.succeed(
      Provisioner.Provisioner,
      Provisioner.Provisioner.of({
        provider: "none",
        mint: () => Effect.die("not used"),
        revoke: () => Effect.die("not used")
      })
    ),
    ProvisionedKeys.layer.pipe(
      Layer.provide(Layer.merge(CoordinationStore.layerMemory, SystemKeys.layerMemory))
    ),
    Delivery.layerConfigWith({}),
    SystemKeys.layerMemory,
    EgressProxy.layerConfig({ publicUrl: "https://aap.example.test" })
  )
  return Delivery.layer.pipe(
    Layer.provideMerge(EgressProxy.layer),
    Layer.provideMerge(OidcIssuer.layer({ issuer: H.ISSUER })),
    Layer.provideMerge(deps),
    Layer.provideMerge(AuditLog.layerMemory)
  )
}

describe("delivery of a proxied capability", () => {
  it.effect("returns the proxy URL and a proxy token, never the key; the token opens the proxy", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(H.T0)
      const sessions = new Map<string, Ports.SessionView>()
      return yield* Effect.gen(function* () {
        const now = yield* DateTime.now
        const view: Ports.SessionView = {
          id: H.sessionId(),
          agent: "codex",
          wallet: "codex",
          capability: "anthropic-proxied",
          tier: "low",
          status: "active",
          expiresAt: DateTime.add(now, { seconds: 900 })
        }
        sessions.set(view.id, view)
        const delivery = yield* Delivery.Delivery
        const delivered = yield* delivery.deliver(H.codex, view.id, {})
        const wire = JSON.stringify(Schema.encodeSync(DeliveredCredential)(delivered))
        assert.notInclude(wire, KEY)
        const credential = delivered.credential
        assert.strictEqual(credential._tag, "proxy")
        if (credential._tag !== "proxy") return
        assert.strictEqual(credential.baseUrl, `https://aap.example.test/v1/proxy/${view.id}`)
        assert.strictEqual(credential.header, "x-api-key")
        const token = Redacted.value(credential.token)
        assert.deepStrictEqual(
          Object.fromEntries(Object.entries(delivered.env).map(([k, v]) => [k, Redacted.value(v)])),
          {
            ANTHROPIC_API_KEY: token,
            ANTHROPIC_BASE_URL: credential.baseUrl,
            AAP_PROXY_URL: credential.baseUrl,
            AAP_PROXY_TOKEN: token
          }
        )
        const issued = yield* Effect.flatMap(AuditReader.AuditReader, (r) =>
          r.query({ action: "credential.issued", session: view.id })
        )
        assert.strictEqual(issued.length, 1)
        assert.strictEqual(issued[0]?.outcome, "success")
        assert.isDefined(issued[0]?.hmac?.credential)
        assert.notInclude(JSON.stringify(issued), token)
        assert.notInclude(JSON.stringify(issued), KEY)

        const proxy = yield* EgressProxy.EgressProxy
        const grant = yield* proxy.open({
          session: view.id,
          method: "POST",
          path: "/v1/messages",
          headers: { "x-api-key": token }
        })
        assert.strictEqual(Redacted.value(grant.credential), KEY)
      }).pipe(Effect.provide(makeLayer(sessions)))
    })
  )
})
