import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { AuditSink } from "@aap/audit"
import { AssumeRoleWithWebIdentityCommand } from "@aws-sdk/client-sts"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, type Layer, Redacted, TestClock } from "effect"
import * as Jose from "jose"
import { Delivery } from "../../src/Delivery.js"
import { OidcIssuer } from "../../src/delivery/OidcIssuer.js"
import * as ProvisionedKeys from "../../src/delivery/ProvisionedKeys.js"
import * as FakeOpenRouter from "./support/fakeOpenRouter.js"
import * as H from "./support/harness.js"
import { registerLiveAwsTests } from "./support/liveAws.js"
import * as OpenSsh from "./support/openssh.js"

const inEnv = <A, E>(
  test: (env: H.Env) => Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof H.makeEnv>["layer"]>>,
  options: Parameters<typeof H.makeEnv>[0] = {}
) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(H.T0)
    const { env, layer } = H.makeEnv(options)
    return yield* test(env).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => env.sts.restore())))
  })

const deliver = (caller: typeof H.codex, id: string, publicKey?: string) =>
  Effect.flatMap(Delivery, (d) => d.deliver(caller, id, publicKey === undefined ? {} : { publicKey }))

const failAudit = Effect.flatMap(AuditSink.MemorySink, (s) => s.setMode("fail"))

describe("the delivery invariant", () => {
  it.effect("a failing audit sink yields AuditUnavailable and no credential, for every backing", () =>
    inEnv((env) =>
      Effect.gen(function* () {
        const bearer = yield* env.session(H.codex, "openrouter-chat", 900)
        const sts = yield* env.session(H.codex, "memory-s3", 1800)
        const wrapped = yield* env.session(H.codex, "gh-pr", 900)
        yield* failAudit
        for (const s of [bearer, sts, wrapped]) {
          const e = yield* Effect.flip(deliver(H.codex, s.id))
          assert.strictEqual(e._tag, "AuditUnavailable", s.capability)
        }
      })
    )
  )

  it.scoped("a failing audit sink: a provisioned key is minted, then revoked upstream, never returned", () =>
    Effect.gen(function* () {
      const fake = yield* FakeOpenRouter.start(H.CANARY.management)
      yield* inEnv(
        (env) =>
          Effect.gen(function* () {
            const s = yield* env.session(H.codex, "openrouter-metered", 900)
            yield* failAudit
            const e = yield* Effect.flip(deliver(H.codex, s.id))
            assert.strictEqual(e._tag, "AuditUnavailable")
            assert.strictEqual(fake.requests.filter((r) => r.method === "POST").length, 1)
            assert.strictEqual(fake.requests.filter((r) => r.method === "DELETE").length, 1)
            assert.strictEqual(fake.keys.size, 0)
            const records = yield* ProvisionedKeys.ProvisionedKeys.pipe(
              Effect.flatMap((p) => p.forSession(s.id))
            )
            assert.strictEqual(records.length, 1)
            assert.isDefined(records[0]?.revokedAt)
          }),
        { provisioner: H.openRouterProvisioner(fake.baseUrl) }
      )
    })
  )

  const refusals: ReadonlyArray<{
    readonly name: string
    readonly tag: string
    readonly setup: (env: H.Env) => Effect.Effect<{ id: string; caller: typeof H.codex }>
    readonly auditReason: string
  }> = [
    {
      name: "another agent's session",
      tag: "NotFound",
      auditReason: "not-owner",
      setup: (env) =>
        Effect.map(env.session(H.claude, "ses-send", 3600), (s) => ({ id: s.id, caller: H.codex }))
    },
    {
      name: "a missing session",
      tag: "NotFound",
      auditReason: "not-found",
      setup: () => Effect.succeed({ id: "ses_doesnotexist00000000000000", caller: H.codex })
    },
    {
      name: "an expired session",
      tag: "Expired",
      auditReason: "expired",
      setup: (env) =>
        Effect.map(env.session(H.codex, "memory-s3", 1800, "expired"), (s) => ({ id: s.id, caller: H.codex }))
    },
    {
      name: "an active session whose deadline passed (not yet swept)",
      tag: "Expired",
      auditReason: "expired",
      setup: (env) =>
        Effect.map(env.session(H.codex, "memory-s3", -1), (s) => ({ id: s.id, caller: H.codex }))
    },
    {
      name: "a revoked session",
      tag: "SessionNotActive",
      auditReason: "not-active:revoked",
      setup: (env) =>
        Effect.map(env.session(H.codex, "memory-s3", 1800, "revoked"), (s) => ({ id: s.id, caller: H.codex }))
    },
    {
      name: "a denied session",
      tag: "SessionNotActive",
      auditReason: "not-active:denied",
      setup: (env) =>
        Effect.map(env.session(H.codex, "memory-s3", 1800, "denied"), (s) => ({ id: s.id, caller: H.codex }))
    },
    {
      name: "a session still pending approval",
      tag: "SessionNotActive",
      auditReason: "not-active:pending_approval",
      setup: (env) =>
        Effect.map(env.session(H.codex, "ssh-platform-host", 600, "pending_approval"), (s) => ({
          id: s.id,
          caller: H.codex
        }))
    },
    {
      name: "an aws-sts session with less than 900 s left",
      tag: "CredentialWindowTooShort",
      auditReason: "sts-window-too-short",
      setup: (env) =>
        Effect.map(env.session(H.codex, "memory-s3", 899), (s) => ({ id: s.id, caller: H.codex }))
    },
    {
      name: "an ssh-certificate session without a public key",
      tag: "InvalidPublicKey",
      auditReason: "invalid-public-key",
      setup: (env) =>
        Effect.map(env.session(H.codex, "ssh-platform-host", 600), (s) => ({ id: s.id, caller: H.codex }))
    },
    {
      name: "a proxied bearer token",
      tag: "ProxyOnly",
      auditReason: "proxy-only",
      setup: (env) =>
        Effect.map(env.session(H.codex, "anthropic-proxied", 600), (s) => ({ id: s.id, caller: H.codex }))
    }
  ]

  for (const r of refusals) {
    it.effect(`${r.name}: ${r.tag}, zero STS calls, zero vault reads, audited as refused`, () =>
      inEnv((env) =>
        Effect.gen(function* () {
          const { id, caller } = yield* r.setup(env)
          const e = yield* Effect.flip(deliver(caller, id))
          assert.strictEqual(e._tag, r.tag)
          assert.strictEqual(H.stsCalls(env), 0)
          assert.strictEqual(env.counters.vaultReads, 0, env.counters.vaultReadNames.join(","))
          const events = yield* H.auditEvents
          assert.strictEqual(events.length, 1)
          assert.strictEqual(events[0]?.action, "credential.issued")
          assert.notStrictEqual(events[0]?.outcome, "success")
          assert.strictEqual(events[0]?.reason, r.auditReason)
        })
      )
    )
  }

  it.effect("another agent's session answers exactly like a missing one", () =>
    inEnv((env) =>
      Effect.gen(function* () {
        const s = yield* env.session(H.claude, "ses-send", 3600)
        const theirs = yield* Effect.flip(deliver(H.codex, s.id))
        const missing = yield* Effect.flip(deliver(H.codex, "ses_zzzzzzzzzzzzzzzzzzzzzzzzzz"))
        assert.deepStrictEqual(
          JSON.stringify(theirs).replace(s.id, "X"),
          JSON.stringify(missing).replace("ses_zzzzzzzzzzzzzzzzzzzzzzzzzz", "X")
        )
      })
    )
  )

  it.effect("the catalog is re-checked: a withdrawn capability or a removed agent is refused", () => {
    const ref = { current: H.catalog }
    return inEnv(
      (env) =>
        Effect.gen(function* () {
          const a = yield* env.session(H.codex, "memory-s3", 1800)
          ref.current = H.catalogWith((c) => (c.id === "memory-s3" ? undefined : c))
          const e1 = yield* Effect.flip(deliver(H.codex, a.id))
          assert.deepInclude(e1, { _tag: "RequestDenied", reason: "unknown-capability" })
          const b = yield* env.session(H.codex, "ses-send", 3600)
          ref.current = H.catalogWith((c) => (c.id === "ses-send" ? { ...c, agents: ["claude"] } : c))
          const e2 = yield* Effect.flip(deliver(H.codex, b.id))
          assert.deepInclude(e2, { _tag: "RequestDenied", reason: "agent-not-allowed" })
          assert.strictEqual(H.stsCalls(env), 0)
          assert.strictEqual(env.counters.vaultReads, 0)
        }),
      { catalogRef: ref }
    )
  })
})

describe("bearer-token", () => {
  it.effect("decrypts the secret of the session's wallet and returns it with its env var and expiresAt", () =>
    inEnv((env) =>
      Effect.gen(function* () {
        const s = yield* env.session(H.claude, "openrouter-chat", 900)
        const out = yield* deliver(H.claude, s.id)
        assert.strictEqual(out.credential._tag, "bearer-token")
        if (out.credential._tag !== "bearer-token") return
        assert.strictEqual(Redacted.value(out.credential.token), H.CANARY.bearerOtherWallet)
        assert.isFalse(out.credential.provisioned)
        assert.deepStrictEqual(Object.keys(out.env), ["OPENROUTER_API_KEY"])
        assert.strictEqual(Redacted.value(out.env.OPENROUTER_API_KEY!), H.CANARY.bearerOtherWallet)
        assert.isTrue(DateTime.Equivalence(out.expiresAt, s.expiresAt))
        assert.deepStrictEqual(env.counters.vaultReadNames, ["claude/openrouter/api-key"])
        const [event] = yield* H.auditEvents
        assert.deepInclude(event, {
          action: "credential.issued",
          outcome: "success",
          session: s.id,
          wallet: "claude"
        })
        assert.match(event?.hmac?.credential ?? "", /^[0-9a-f]{64}$/)
      })
    )
  )

  it.effect(
    "a secret missing from the wallet is CredentialUnavailable(secret-missing); nothing issued",
    () => {
      const ref = {
        current: H.catalogWith((c) =>
          c.id === "openrouter-chat"
            ? { ...c, backing: { ...c.backing, secret: "openrouter/not-stored" } }
            : c
        )
      }
      return inEnv(
        (env) =>
          Effect.gen(function* () {
            const s = yield* env.session(H.codex, "openrouter-chat", 900)
            const e = yield* Effect.flip(deliver(H.codex, s.id))
            assert.deepInclude(e, { _tag: "CredentialUnavailable", reason: "secret-missing" })
            const [event] = yield* H.auditEvents
            assert.deepInclude(event, { outcome: "error", reason: "secret-missing" })
          }),
        { catalogRef: ref }
      )
    }
  )
})

describe("vault failures are told apart", () => {
  it.effect(
    "a stored secret that fails its integrity check is Tampered(secret), audited as such; nothing issued",
    () =>
      inEnv(
        (env) =>
          Effect.gen(function* () {
            const s = yield* env.session(H.codex, "openrouter-chat", 900)
            const e = yield* Effect.flip(deliver(H.codex, s.id))
            assert.deepInclude(e, { _tag: "Tampered", kind: "secret" })
            const [event] = yield* H.auditEvents
            assert.deepInclude(event, { outcome: "error", reason: "secret-tampered" })
          }),
        { secretsFail: "SecretIntegrityError" }
      )
  )

  it.effect("a vault outage is CredentialUnavailable(vault-unavailable)", () =>
    inEnv(
      (env) =>
        Effect.gen(function* () {
          const s = yield* env.session(H.codex, "openrouter-chat", 900)
          const e = yield* Effect.flip(deliver(H.codex, s.id))
          assert.deepInclude(e, { _tag: "CredentialUnavailable", reason: "vault-unavailable" })
          const [event] = yield* H.auditEvents
          assert.deepInclude(event, { outcome: "error", reason: "vault-unavailable" })
        }),
      { secretsFail: "VaultUnavailable" }
    )
  )
})

describe("bearer-token with per-grant provisioning (OpenRouter over HTTP)", () => {
  it.scoped(
    "mints a key per delivery, records only its hash, revokes it on release and on the due sweep",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeOpenRouter.start(H.CANARY.management)
        yield* inEnv(
          (env) =>
            Effect.gen(function* () {
              const s = yield* env.session(H.codex, "openrouter-metered", 900)
              const out = yield* deliver(H.codex, s.id)
              if (out.credential._tag !== "bearer-token") return assert.fail("expected a bearer token")
              assert.isTrue(out.credential.provisioned)
              const [hash, minted] = [...fake.keys.entries()][0]!
              assert.strictEqual(Redacted.value(out.credential.token), minted.key)
              assert.notStrictEqual(Redacted.value(out.credential.token), H.CANARY.bearer)
              assert.deepStrictEqual(fake.requests[0]?.body, {
                name: `aap ${s.id} codex`,
                limit: 2,
                expires_at: DateTime.formatIso(s.expiresAt)
              })
              assert.deepStrictEqual(env.counters.vaultReadNames, ["codex/openrouter/management"])

              const keys = yield* ProvisionedKeys.ProvisionedKeys
              const records = yield* keys.forSession(s.id)
              assert.strictEqual(records.length, 1)
              assert.strictEqual(records[0]?.hash, hash)
              assert.notInclude(JSON.stringify(records), minted.key)

              const delivery = yield* Delivery
              assert.deepStrictEqual(yield* delivery.release(s.id), { revoked: 1, failed: 0 })
              assert.strictEqual(fake.keys.size, 0)
              assert.deepStrictEqual(yield* delivery.release(s.id), { revoked: 0, failed: 0 })

              // The sweep finds keys whose session deadline passed, without knowing the session.
              const s2 = yield* env.session(H.codex, "openrouter-metered", 5)
              yield* deliver(H.codex, s2.id)
              assert.strictEqual(fake.keys.size, 1)
              assert.deepStrictEqual(yield* delivery.releaseDue(100), { revoked: 0, failed: 0 })
              yield* TestClock.adjust("6 seconds")
              assert.deepStrictEqual(yield* delivery.releaseDue(100), { revoked: 1, failed: 0 })
              assert.strictEqual(fake.keys.size, 0)
              assert.deepStrictEqual(yield* keys.due(Math.floor(H.T0 / 1000) + 10_000, 100), [])
            }),
          { provisioner: H.openRouterProvisioner(fake.baseUrl) }
        )
      })
  )

  it.scoped("a refused management key is UpstreamRefused, nothing recorded", () =>
    Effect.gen(function* () {
      const fake = yield* FakeOpenRouter.start("a-different-management-key")
      yield* inEnv(
        (env) =>
          Effect.gen(function* () {
            const s = yield* env.session(H.codex, "openrouter-metered", 900)
            const e = yield* Effect.flip(deliver(H.codex, s.id))
            assert.deepInclude(e, { _tag: "UpstreamRefused", upstream: "openrouter", code: "401" })
            const records = yield* ProvisionedKeys.ProvisionedKeys.pipe(
              Effect.flatMap((p) => p.forSession(s.id))
            )
            assert.strictEqual(records.length, 0)
          }),
        { provisioner: H.openRouterProvisioner(fake.baseUrl) }
      )
    })
  )
})

const MEMORY_POLICY =
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:ListBucket"],"Resource":["arn:aws:s3:::aap-memory/codex/*"]}]}'
const SES_POLICY =
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ses:SendEmail"],"Resource":["arn:aws:ses:us-east-1:210987654321:identity/example.org"]},{"Effect":"Deny","Action":["ses:SendRawEmail"],"Resource":["*"]}]}'

describe("aws-sts (AssumeRoleWithWebIdentity at the SDK boundary)", () => {
  const verify = (token: string) =>
    Effect.gen(function* () {
      const jwks = yield* Effect.flatMap(OidcIssuer, (i) => i.jwks)
      return yield* Effect.promise(() =>
        Jose.jwtVerify(token, Jose.createLocalJWKSet({ keys: [...jwks.keys] }), {
          issuer: H.ISSUER,
          audience: "sts.amazonaws.com",
          algorithms: ["ES256"],
          currentDate: new Date(H.T0 + 1000)
        })
      )
    })

  it.effect("memory-s3: the exact command input, and a token AWS would accept", () =>
    inEnv((env) =>
      Effect.gen(function* () {
        const s = yield* env.session(H.codex, "memory-s3", 1800)
        const out = yield* deliver(H.codex, s.id)
        const calls = env.sts.commandCalls(AssumeRoleWithWebIdentityCommand)
        assert.strictEqual(calls.length, 1)
        const input = calls[0]!.args[0].input
        assert.deepStrictEqual(
          { ...input, WebIdentityToken: "<checked below>" },
          {
            RoleArn: "arn:aws:iam::123456789012:role/aap-memory",
            RoleSessionName: `aap.codex.${s.id}`,
            WebIdentityToken: "<checked below>",
            Policy: MEMORY_POLICY,
            DurationSeconds: 1800
          }
        )
        const { payload } = yield* verify(input.WebIdentityToken!)
        assert.strictEqual(payload.sub, "agent:codex")
        assert.deepStrictEqual(payload["https://aws.amazon.com/tags"], {
          principal_tags: { aap_wallet: ["codex"], aap_agent: ["codex"], aap_session: [s.id] },
          transitive_tag_keys: ["aap_wallet", "aap_agent", "aap_session"]
        })
        if (out.credential._tag !== "aws-sts") return assert.fail("expected aws-sts")
        assert.strictEqual(out.credential.accessKeyId, "ASIAEXAMPLEKEY000001")
        assert.strictEqual(Redacted.value(out.credential.secretAccessKey), H.CANARY.stsSecret)
        assert.strictEqual(out.credential.region, "eu-central-1")
        assert.deepStrictEqual(Object.keys(out.env).sort(), [
          "AWS_ACCESS_KEY_ID",
          "AWS_DEFAULT_REGION",
          "AWS_REGION",
          "AWS_SECRET_ACCESS_KEY",
          "AWS_SESSION_TOKEN"
        ])
        // The only vault read is the issuer key, in the system wallet.
        assert.deepStrictEqual(env.counters.vaultReadNames, [
          "aap.system/oidc/signing-key",
          "aap.system/oidc/signing-key"
        ])
      })
    )
  )

  it.effect(
    "ses-send (another account, two statements, session tags): the exact command input; duration capped at the configured max",
    () =>
      inEnv((env) =>
        Effect.gen(function* () {
          const s = yield* env.session(H.claude, "ses-send", 7200)
          yield* deliver(H.claude, s.id)
          const input = env.sts.commandCalls(AssumeRoleWithWebIdentityCommand)[0]!.args[0].input
          assert.deepStrictEqual(
            { ...input, WebIdentityToken: "" },
            {
              RoleArn: "arn:aws:iam::210987654321:role/path/aap-mailer",
              RoleSessionName: `aap.claude.${s.id}`,
              WebIdentityToken: "",
              Policy: SES_POLICY,
              DurationSeconds: 3600
            }
          )
          const { payload } = yield* verify(input.WebIdentityToken!)
          assert.deepStrictEqual(payload["https://aws.amazon.com/tags"], {
            principal_tags: {
              team: ["claude-mail"],
              purpose: ["outbound"],
              aap_wallet: ["claude"],
              aap_agent: ["claude"],
              aap_session: [s.id]
            },
            transitive_tag_keys: ["aap_wallet", "aap_agent", "aap_session"]
          })
        })
      )
  )

  it.effect("memory-list (a condition, the session in a resource): the exact command input", () =>
    inEnv((env) =>
      Effect.gen(function* () {
        const s = yield* env.session(H.codex, "memory-list", 1200)
        yield* deliver(H.codex, s.id)
        const input = env.sts.commandCalls(AssumeRoleWithWebIdentityCommand)[0]!.args[0].input
        assert.deepStrictEqual(
          { ...input, WebIdentityToken: "" },
          {
            RoleArn: "arn:aws:iam::123456789012:role/aap-memory-read",
            RoleSessionName: `aap.codex.${s.id}`,
            WebIdentityToken: "",
            Policy:
              '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::aap-memory"],"Condition":{"StringLike":{"s3:prefix":["codex/*"]}}},' +
              `{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::aap-memory/codex/sessions/${s.id}/*"]}]}`,
            DurationSeconds: 1200
          }
        )
        // The call goes to the catalog's region.
        const region = yield* Effect.promise(() => env.sts.call(0).thisValue.config.region())
        assert.strictEqual(region, "eu-west-3")
      })
    )
  )

  it.effect(
    "near expiry: 900 s left is issued for exactly 900 s; 899 s left is refused before any call",
    () =>
      inEnv((env) =>
        Effect.gen(function* () {
          const s = yield* env.session(H.codex, "memory-s3", 900)
          yield* deliver(H.codex, s.id)
          assert.strictEqual(
            env.sts.commandCalls(AssumeRoleWithWebIdentityCommand)[0]!.args[0].input.DurationSeconds,
            900
          )
          yield* TestClock.adjust("1 second")
          const e = yield* Effect.flip(deliver(H.codex, s.id))
          assert.deepInclude(e, {
            _tag: "CredentialWindowTooShort",
            remainingSeconds: 899,
            minimumSeconds: 900
          })
          assert.strictEqual(H.stsCalls(env), 1)
        })
      )
  )

  it.effect("STS refusing the token is UpstreamRefused; STS unreachable is CredentialUnavailable", () =>
    inEnv((env) =>
      Effect.gen(function* () {
        const s = yield* env.session(H.codex, "memory-s3", 1800)
        env.sts.on(AssumeRoleWithWebIdentityCommand).rejects(
          Object.assign(new Error("Couldn't retrieve verification key from your identity provider"), {
            name: "InvalidIdentityTokenException"
          })
        )
        const e1 = yield* Effect.flip(deliver(H.codex, s.id))
        assert.deepInclude(e1, {
          _tag: "UpstreamRefused",
          upstream: "aws-sts",
          code: "InvalidIdentityTokenException"
        })
        env.sts
          .on(AssumeRoleWithWebIdentityCommand)
          .rejects(Object.assign(new Error("socket hang up"), { name: "TimeoutError" }))
        const e2 = yield* Effect.flip(deliver(H.codex, s.id))
        assert.deepInclude(e2, { _tag: "CredentialUnavailable", reason: "upstream-unavailable" })
        assert.notInclude(JSON.stringify([e1, e2]), "verification key")
      })
    )
  )
})

describe("ssh-certificate", () => {
  it.scoped(
    "signs the agent's key with the catalog principals, validity ending with the session; ssh-keygen reads it",
    () =>
      Effect.gen(function* () {
        const dir = yield* OpenSsh.tempDir
        const agentKey = yield* OpenSsh.keygen(dir, "agent")
        yield* inEnv((env) =>
          Effect.gen(function* () {
            const s = yield* env.session(H.codex, "ssh-platform-host", 600)
            const out = yield* deliver(H.codex, s.id, agentKey.publicKey)
            if (out.credential._tag !== "ssh-certificate") return assert.fail("expected a certificate")
            assert.deepStrictEqual(out.credential.principals, ["deploy", "ops"])
            assert.strictEqual(out.credential.keyId, `aap:${s.id}:codex`)
            assert.isTrue(DateTime.Equivalence(out.credential.validBefore, s.expiresAt))
            assert.strictEqual(DateTime.toEpochMillis(out.credential.validAfter), H.T0 - 60_000)
            assert.deepStrictEqual(env.counters.vaultReadNames, ["codex/ssh/ca-key"])
            const file = Path.join(dir, "agent-cert.pub")
            yield* Effect.promise(() =>
              Fs.writeFile(
                file,
                `${out.credential._tag === "ssh-certificate" ? out.credential.certificate : ""}\n`
              )
            )
            const listed = yield* OpenSsh.listCertificate(file)
            assert.strictEqual(listed.code, 0, listed.stderr)
            assert.include(listed.stdout, `Key ID: "aap:${s.id}:codex"`)
            assert.match(listed.stdout, /Principals:\s*\n\s*deploy\n\s*ops\n/)
          })
        )
      })
  )

  it.effect("a malformed public key is InvalidPublicKey before the CA is read", () =>
    inEnv((env) =>
      Effect.gen(function* () {
        const s = yield* env.session(H.codex, "ssh-platform-host", 600)
        const e = yield* Effect.flip(deliver(H.codex, s.id, "ssh-rsa AAAAB3NzaC1yc2E= x"))
        assert.strictEqual(e._tag, "InvalidPublicKey")
        assert.strictEqual(env.counters.vaultReads, 0)
      })
    )
  )
})

describe("wrapped-command", () => {
  it.effect("returns the allowed argv and the env resolved from the session's wallet", () =>
    inEnv((env) =>
      Effect.gen(function* () {
        const s = yield* env.session(H.codex, "gh-pr", 900)
        const out = yield* deliver(H.codex, s.id)
        if (out.credential._tag !== "wrapped-command") return assert.fail("expected wrapped-command")
        assert.deepStrictEqual(out.credential.command, ["gh", "pr"])
        assert.strictEqual(Redacted.value(out.env.GH_TOKEN!), H.CANARY.github)
      })
    )
  )
})

// Opt-in, against real AWS: registered only when asked for, never reported when it did not run.
if (process.env.AAP_LIVE_AWS === "1") registerLiveAwsTests()
