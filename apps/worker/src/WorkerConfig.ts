/**
 * The standalone worker's configuration from the environment (DESIGN §13), validated at start
 * with one clear message per bad value. The storage, key and audit variables are the broker's
 * (`AAP_HOME`, `AAP_CATALOG`, `AAP_DYNAMODB_ENDPOINT`, `AAP_TABLE_PREFIX`, `AAP_KMS_KEY_ID`,
 * `AAP_AUDIT_BUCKET`, `AAP_S3_ENDPOINT`, `AWS_REGION`); the worker adds:
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `AAP_WORKER_LISTEN` | `127.0.0.1:8788` | `/healthz` and `/metrics` |
 * | `AAP_WORKER_STS_DENY` | `auto` | `on`, `off`, or `auto`: on when the catalog has an `aws-sts` capability |
 * | `AAP_AUDIT_LOCK_MODE` | `COMPLIANCE` | Object Lock mode of shipped audit objects (`GOVERNANCE` for trials) |
 * | `AAP_AUDIT_RETENTION_DAYS` | `365` | Object Lock retention |
 * | `AAP_WORKER_EXPIRY_EVERY` … `AAP_WORKER_AUDIT_VERIFY_EVERY` | see `Worker.defaults` | job intervals (`15 seconds`, `5 minutes`) |
 *
 * @since 0.1.0
 */
import { Config, Duration, Option } from "effect"
import type * as Worker from "./Worker.js"

export interface StandaloneConfig {
  readonly home: string
  readonly catalogPath: string
  readonly dynamodbEndpoint: Option.Option<string>
  readonly tablePrefix: string
  readonly kmsKeyId: Option.Option<string>
  readonly region: string
  readonly listen: { readonly host: string; readonly port: number }
  readonly stsDeny: "auto" | "on" | "off"
  readonly auditBucket: Option.Option<string>
  readonly s3Endpoint: Option.Option<string>
  readonly lockMode: "COMPLIANCE" | "GOVERNANCE"
  readonly retentionDays: number
  readonly jobs: Partial<{ [K in keyof Worker.WorkerConfig]: { readonly every: Duration.DurationInput } }>
}

const LISTEN = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/

const listen = Config.string("AAP_WORKER_LISTEN").pipe(
  Config.validate({
    message: "AAP_WORKER_LISTEN: expected host:port such as 127.0.0.1:8788",
    validation: (value) => {
      const m = LISTEN.exec(value)
      return m !== null && Number(m[2]) <= 65535
    }
  }),
  Config.map((value) => {
    const m = LISTEN.exec(value)
    return { host: (m?.[1] ?? "").replace(/^\[|\]$/g, ""), port: Number(m?.[2]) }
  }),
  Config.withDefault({ host: "127.0.0.1", port: 8788 })
)

const every = (name: string) =>
  Config.option(
    Config.string(name).pipe(
      Config.validate({
        message: `${name}: expected a duration such as "15 seconds" or "5 minutes"`,
        validation: (value) => Option.isSome(Duration.decodeUnknown(value))
      }),
      Config.map((value) => ({ every: value as Duration.DurationInput }))
    )
  )

const optionalString = (name: string) =>
  Config.option(
    Config.string(name).pipe(
      Config.validate({ message: `${name}: must not be empty`, validation: (v) => v.trim() !== "" })
    )
  )

/** Everything `main.ts` reads. */
export const fromEnv: Config.Config<StandaloneConfig> = Config.all({
  home: Config.string("AAP_HOME").pipe(Config.withDefault("./.aap")),
  catalogPath: Config.string("AAP_CATALOG").pipe(Config.withDefault("examples/catalog.yaml")),
  dynamodbEndpoint: optionalString("AAP_DYNAMODB_ENDPOINT"),
  tablePrefix: Config.string("AAP_TABLE_PREFIX").pipe(
    Config.validate({
      message: "AAP_TABLE_PREFIX: expected 1-200 characters of A-Z a-z 0-9 _ . -",
      validation: (v) => /^[A-Za-z0-9_.-]{1,200}$/.test(v)
    }),
    Config.withDefault("aap")
  ),
  kmsKeyId: optionalString("AAP_KMS_KEY_ID"),
  region: Config.string("AWS_REGION").pipe(Config.withDefault("us-east-1")),
  listen,
  stsDeny: Config.literal(
    "auto",
    "on",
    "off"
  )("AAP_WORKER_STS_DENY").pipe(Config.withDefault("auto" as const)),
  auditBucket: optionalString("AAP_AUDIT_BUCKET"),
  s3Endpoint: Config.option(
    Config.string("AAP_S3_ENDPOINT").pipe(
      Config.validate({
        message: "AAP_S3_ENDPOINT: expected an http(s) URL",
        validation: (v) => /^https?:\/\/\S+$/.test(v)
      })
    )
  ),
  lockMode: Config.literal(
    "COMPLIANCE",
    "GOVERNANCE"
  )("AAP_AUDIT_LOCK_MODE").pipe(Config.withDefault("COMPLIANCE" as const)),
  retentionDays: Config.integer("AAP_AUDIT_RETENTION_DAYS").pipe(
    Config.validate({
      message: "AAP_AUDIT_RETENTION_DAYS: expected 1 to 36500",
      validation: (n) => n >= 1 && n <= 36_500
    }),
    Config.withDefault(365)
  ),
  jobs: Config.all({
    expiry: every("AAP_WORKER_EXPIRY_EVERY"),
    revocation: every("AAP_WORKER_REVOCATION_EVERY"),
    stsDeny: every("AAP_WORKER_STS_DENY_EVERY"),
    rewrap: every("AAP_WORKER_REWRAP_EVERY"),
    auditShipping: every("AAP_WORKER_AUDIT_SHIPPING_EVERY"),
    auditVerify: every("AAP_WORKER_AUDIT_VERIFY_EVERY")
  }).pipe(
    Config.map((jobs) => {
      const out: Record<string, { readonly every: Duration.DurationInput }> = {}
      for (const [k, v] of Object.entries(jobs)) if (Option.isSome(v)) out[k] = v.value
      return out as StandaloneConfig["jobs"]
    })
  )
})
