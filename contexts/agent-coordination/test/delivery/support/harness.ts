/**
 * The delivery service wired with real components where they exist (the vault with envelope
 * encryption, audit log in memory with a real hash chain, coordination store in memory, OIDC
 * issuer, OpenRouter adapter over HTTP)
 * and counting test layers at the boundaries the invariant is about (vault reads, STS calls).
 */

import { AuditLog, AuditReader, AuditSink } from "@aap/audit"
import { Catalog } from "@aap/catalog"
import { KeyProvider, SystemKeys } from "@aap/key-custody"
import { SecretStore } from "@aap/vault"
import { AssumeRoleWithWebIdentityCommand, STSClient } from "@aws-sdk/client-sts"
import { FetchHttpClient } from "@effect/platform"
import { mockClient } from "aws-sdk-client-mock"
import { DateTime, Effect, Layer, List, Logger, LogLevel, Redacted, Schema } from "effect"
import * as CoordinationStore from "../../../src/CoordinationStore.js"
import * as CurrentCatalog from "../../../src/CurrentCatalog.js"
import * as Delivery from "../../../src/Delivery.js"
import * as AwsCredentials from "../../../src/delivery/AwsCredentials.js"
import * as OidcIssuer from "../../../src/delivery/OidcIssuer.js"
import * as Ports from "../../../src/delivery/Ports.js"
import * as ProvisionedKeys from "../../../src/delivery/ProvisionedKeys.js"
import * as Provisioner from "../../../src/delivery/Provisioner.js"
import * as SshCertificate from "../../../src/delivery/SshCertificate.js"

export const T0 = 1_900_000_000_000
export const ISSUER = "https://issuer.aap.test"

export const CANARY = {
  bearer: "CANARY-bearer-7f3a9c",
  bearerOtherWallet: "CANARY-claude-wallet-b1",
  management: "CANARY-mgmt-44d1",
  github: "CANARY-gh-pat-90aa",
  stsSecret: "CANARY-sts-secret-5c2e",
  stsToken: "CANARY-sts-session-token-e8f0"
} as const

export const caKey = SshCertificate.generateAuthorityKey()

export const catalogInput = {
  schemaVersion: 1,
  agents: [
    { id: "codex", wallet: "codex" },
    { id: "claude", wallet: "claude" }
  ],
  operators: [{ id: "alice" }],
  capabilities: [
    {
      id: "openrouter-chat",
      tier: "low",
      agents: ["codex", "claude"],
      ttl: { default: "15m", max: "1h" },
      backing: { type: "bearer-token", secret: "openrouter/api-key", env: "OPENROUTER_API_KEY" }
    },
    {
      id: "openrouter-metered",
      tier: "low",
      agents: ["codex"],
      ttl: { default: "15m", max: "1h" },
      backing: {
        type: "bearer-token",
        secret: "openrouter/api-key",
        env: "OPENROUTER_API_KEY",
        provision: { type: "openrouter", managementSecret: "openrouter/management", limitUsd: 2 }
      }
    },
    {
      id: "anthropic-proxied",
      tier: "low",
      agents: ["codex"],
      ttl: { default: "15m", max: "1h" },
      backing: {
        type: "bearer-token",
        secret: "anthropic/api-key",
        env: "ANTHROPIC_API_KEY",
        proxy: {
          upstream: "https://api.anthropic.com",
          header: "x-api-key",
          paths: ["/v1/messages"],
          methods: ["POST"]
        }
      }
    },
    {
      id: "memory-s3",
      tier: "medium",
      agents: ["codex"],
      ttl: { default: "30m", max: "8h" },
      backing: {
        type: "aws-sts",
        roleArn: "arn:aws:iam::123456789012:role/aap-memory",
        region: "eu-central-1",
        statements: [
          {
            actions: ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a catalog template, not JavaScript
            resources: ["arn:aws:s3:::${memory_bucket}/${wallet}/*"]
          }
        ]
      }
    },
    {
      id: "ses-send",
      tier: "medium",
      agents: ["codex", "claude"],
      ttl: { default: "1h", max: "2h" },
      backing: {
        type: "aws-sts",
        roleArn: "arn:aws:iam::210987654321:role/path/aap-mailer",
        region: "us-east-1",
        statements: [
          {
            actions: ["ses:SendEmail"],
            resources: ["arn:aws:ses:us-east-1:210987654321:identity/example.org"]
          },
          { effect: "Deny", actions: ["ses:SendRawEmail"], resources: ["*"] }
        ],
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a catalog template, not JavaScript
        sessionTags: { team: "${agent}-mail", purpose: "outbound" }
      }
    },
    {
      id: "memory-list",
      tier: "low",
      agents: ["codex"],
      ttl: { default: "20m", max: "1h" },
      backing: {
        type: "aws-sts",
        roleArn: "arn:aws:iam::123456789012:role/aap-memory-read",
        region: "eu-west-3",
        statements: [
          {
            actions: ["s3:ListBucket"],
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a catalog template, not JavaScript
            resources: ["arn:aws:s3:::${memory_bucket}"],
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a catalog template, not JavaScript
            conditions: { StringLike: { "s3:prefix": ["${wallet}/*"] } }
          },
          {
            actions: ["s3:GetObject"],
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a catalog template, not JavaScript
            resources: ["arn:aws:s3:::${memory_bucket}/${wallet}/sessions/${session}/*"]
          }
        ]
      }
    },
    {
      id: "ssh-platform-host",
      tier: "high",
      agents: ["codex"],
      ttl: { default: "10m", max: "30m" },
      backing: { type: "ssh-certificate", principals: ["deploy", "ops"], ca: "ssh/ca-key" }
    },
    {
      id: "gh-pr",
      tier: "low",
      agents: ["codex"],
      ttl: { default: "15m", max: "1h" },
      backing: { type: "wrapped-command", command: ["gh", "pr"], env: { GH_TOKEN: "github/token" } }
    }
  ]
}

export const catalog: Catalog.Catalog = Schema.decodeUnknownSync(Catalog.Catalog)(catalogInput)

type CapabilityInput = (typeof catalogInput.capabilities)[number] & Record<string, unknown>

/** The fixture catalog with capabilities edited (or removed with `undefined`), decoded again. */
export const catalogWith = (
  edit: (c: CapabilityInput) => Record<string, unknown> | undefined
): Catalog.Catalog =>
  Schema.decodeUnknownSync(Catalog.Catalog)({
    ...catalogInput,
    capabilities: catalogInput.capabilities.flatMap((c) => {
      const next = edit(c)
      return next === undefined ? [] : [next]
    })
  })

export const codex = { _tag: "agent" as const, id: "codex", wallet: "codex" }
export const claude = { _tag: "agent" as const, id: "claude", wallet: "claude" }

let counter = 0
export const sessionId = () => `ses_${String(++counter).padStart(26, "0")}`

export interface Counters {
  vaultReads: number
  vaultReadNames: Array<string>
}

export interface Env {
  readonly sessions: Map<string, Ports.SessionView>
  readonly counters: Counters
  readonly logs: Array<string>
  readonly sts: ReturnType<typeof stsMock>
  /** Create an active session (or another status) of `capability` for `agent`, ending `ttl` seconds after now. */
  readonly session: (
    agent: typeof codex,
    capability: string,
    ttlSeconds: number,
    status?: Ports.SessionStatus
  ) => Effect.Effect<Ports.SessionView>
}

export const secretsSeed: ReadonlyArray<readonly [string, string, string]> = [
  ["codex", "openrouter/api-key", CANARY.bearer],
  ["claude", "openrouter/api-key", CANARY.bearerOtherWallet],
  ["codex", "openrouter/management", CANARY.management],
  ["codex", "anthropic/api-key", "CANARY-anthropic-never-delivered"],
  ["codex", "github/token", CANARY.github],
  ["codex", "ssh/ca-key", Redacted.value(caKey)]
]

/** The real vault (envelope encryption, in-memory backend) behind the `Secrets` port, seeded. */
export const vaultSecrets: Layer.Layer<Ports.Secrets> = Layer.effect(
  Ports.Secrets,
  Effect.gen(function* () {
    const secrets = yield* Ports.Secrets
    for (const [wallet, name, value] of secretsSeed) yield* secrets.put(wallet, name, Redacted.make(value))
    return secrets
  })
).pipe(
  Layer.provide(Ports.secretsFromVault),
  Layer.provide(SecretStore.layerMemory),
  Layer.provide(KeyProvider.layerMemory),
  Layer.orDie
)

export const stsMock = () => {
  const sts = mockClient(STSClient)
  sts
    .on(AssumeRoleWithWebIdentityCommand)
    .callsFake(async (input: { DurationSeconds?: number; RoleArn?: string }) => ({
      Credentials: {
        AccessKeyId: "ASIAEXAMPLEKEY000001",
        SecretAccessKey: CANARY.stsSecret,
        SessionToken: CANARY.stsToken,
        Expiration: new Date(T0 + (input.DurationSeconds ?? 900) * 1000)
      },
      AssumedRoleUser: { Arn: `${input.RoleArn}/session`, AssumedRoleId: "AROAEXAMPLE:session" }
    }))
  return sts
}

/**
 * Build the environment. `provisioner` defaults to one that fails the test if called.
 */
export const makeEnv = (options: {
  readonly provisioner?: Layer.Layer<Provisioner.Provisioner>
  readonly catalogRef?: { current: Catalog.Catalog }
  /** Where sessions come from (default: the map in `env.sessions`). */
  readonly sessions?: Layer.Layer<Ports.Sessions>
  /** Every vault read fails with `SecretsUnavailable` of this reason (a vault error's tag). */
  readonly secretsFail?: string
}) => {
  const sessions = new Map<string, Ports.SessionView>()
  const counters: Counters = { vaultReads: 0, vaultReadNames: [] }
  const logs: Array<string> = []
  const sts = stsMock()

  const countingSecrets = Layer.effect(
    Ports.Secrets,
    Effect.map(Ports.Secrets, (inner) =>
      Ports.Secrets.of({
        get: (w, n) =>
          Effect.suspend(() => {
            counters.vaultReads++
            counters.vaultReadNames.push(`${w}/${n}`)
            return options.secretsFail === undefined
              ? inner.get(w, n)
              : Effect.fail(new Ports.SecretsUnavailable({ reason: options.secretsFail }))
          }),
        put: inner.put
      })
    )
  ).pipe(Layer.provide(vaultSecrets))

  const noProvisioner = Layer.succeed(
    Provisioner.Provisioner,
    Provisioner.Provisioner.of({
      provider: "none",
      mint: () => Effect.die("the provisioner must not be called here"),
      revoke: () => Effect.die("the provisioner must not be called here")
    })
  )

  const ref = options.catalogRef ?? { current: catalog }
  const currentCatalog = Layer.succeed(CurrentCatalog.CurrentCatalog, { get: Effect.sync(() => ref.current) })

  const captureLogger = Logger.make((o) => {
    logs.push(Logger.logfmtLogger.log(o))
    logs.push(
      Logger.structuredLogger.log(o) === undefined ? "" : JSON.stringify(Logger.structuredLogger.log(o))
    )
  })

  const deps = Layer.mergeAll(
    options.sessions ?? Ports.sessionsFromMap(sessions),
    currentCatalog,
    countingSecrets,
    AwsCredentials.layerStsClients,
    options.provisioner ?? noProvisioner,
    ProvisionedKeys.layer.pipe(
      Layer.provide(Layer.merge(CoordinationStore.layerMemory, SystemKeys.layerMemory))
    ),
    Delivery.layerConfigWith({ buckets: { memory_bucket: "aap-memory" } })
  )

  const layer = Delivery.layer.pipe(
    Layer.provideMerge(OidcIssuer.layer({ issuer: ISSUER }).pipe(Layer.provideMerge(deps))),
    Layer.provideMerge(AuditLog.layerMemory),
    Layer.provideMerge(Logger.replace(Logger.defaultLogger, captureLogger)),
    Layer.provideMerge(Logger.minimumLogLevel(LogLevel.All))
  )

  const env: Env = {
    sessions,
    counters,
    logs,
    sts,
    session: (agent, capability, ttlSeconds, status = "active") =>
      Effect.gen(function* () {
        const now = yield* DateTime.now
        const tier = catalog.capabilities.find((c) => c.id === capability)?.tier ?? "low"
        const view: Ports.SessionView = {
          id: sessionId(),
          agent: agent.id,
          wallet: agent.wallet,
          capability,
          tier,
          status,
          expiresAt: DateTime.add(now, { seconds: ttlSeconds })
        }
        sessions.set(view.id, view)
        return view
      })
  }
  return { env, layer }
}

/** Every stored audit line (raw JSON as the sink holds it). */
export const auditLines = Effect.gen(function* () {
  const reader = yield* AuditReader.AuditReader
  const sink = yield* AuditSink.MemorySink
  const out: Array<string> = []
  for (const s of yield* reader.streams) out.push(...(yield* sink.lines(s)))
  return out
})

export const auditEvents = Effect.gen(function* () {
  const reader = yield* AuditReader.AuditReader
  return yield* reader.query({ limit: 1000 })
})

export const stsCalls = (env: Env) => env.sts.commandCalls(AssumeRoleWithWebIdentityCommand).length

export const openRouterProvisioner = (baseUrl: string): Layer.Layer<Provisioner.Provisioner> =>
  Provisioner.layerOpenRouter({ baseUrl }).pipe(Layer.provide(FetchHttpClient.layer))

export { List }
