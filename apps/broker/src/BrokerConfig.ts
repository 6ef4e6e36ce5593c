/**
 * Broker configuration (DESIGN §13): read from the environment with Effect `Config`, validated
 * in one pass before anything listens. Every bad value is named with what was expected; all of
 * them are reported together as one message.
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Context, Data, Duration, Effect, Either, Layer, Option } from "effect"

/** A parsed `host:port`. */
export interface Listen {
  readonly host: string
  readonly port: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BrokerConfigShape {
  /** Root of embedded state: keyring, engine data, audit files, operator token. */
  readonly home: string
  readonly listen: Listen
  readonly catalogPath: string
  /** Unset: the embedded DynamoDB-compatible engine under `home/data`. */
  readonly dynamodbEndpoint: Option.Option<string>
  readonly tablePrefix: string
  /** Set: AWS KMS; unset: the local keyring at `home/keys/keyring.json`. */
  readonly kmsKeyId: Option.Option<string>
  readonly auditSink: "jsonl" | "dynamodb"
  readonly vaultBucket: Option.Option<string>
  readonly memoryBucket: Option.Option<string>
  readonly auditBucket: Option.Option<string>
  readonly s3Endpoint: Option.Option<string>
  /** The OIDC issuer URL for Class A; defaults to `http://<listen>`. */
  readonly oidcIssuer: Option.Option<string>
  readonly region: string
  /** Request bodies above this many bytes are refused with 413. */
  readonly maxBodyBytes: number
  /** A request running longer than this answers 503 `RequestTimeout`. */
  readonly requestTimeout: Duration.Duration
  /** How long in-flight requests get to finish on shutdown. */
  readonly shutdownGrace: Duration.Duration
  /** Staleness bound of the token → principal and session caches on the delivery hot path. */
  readonly cacheTtl: Duration.Duration
  /** How long a decrypted secret may be reused for deliveries (0: read the vault every time). */
  readonly secretCacheTtl: Duration.Duration
  readonly logLevel: "debug" | "info" | "warning" | "error" | "none"
  /** Live (pending or active) sessions one agent may hold (429 beyond). */
  readonly maxLiveSessionsPerAgent: number
  /** Session requests one agent may make per minute (429 beyond). */
  readonly sessionRequestsPerMinute: number
  /**
   * Whether `aap serve` runs the worker's jobs in its own process: `auto` (the default) does in
   * embedded mode, where no other process can open the engine's data; `on` always; `off` never
   * (run `aap worker` beside it).
   */
  readonly workerInProcess: "auto" | "on" | "off"
}

/**
 * @since 0.1.0
 * @category tags
 */
export class BrokerConfig extends Context.Tag("@aap/broker/BrokerConfig")<
  BrokerConfig,
  BrokerConfigShape
>() {}

/**
 * One problem with one configuration value.
 *
 * @since 0.1.0
 * @category errors
 */
export interface ConfigProblem {
  readonly name: string
  readonly message: string
}

/**
 * Every problem found in the configuration, rendered as one message.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidBrokerConfig extends Data.TaggedError("InvalidBrokerConfig")<{
  readonly problems: ReadonlyArray<ConfigProblem>
}> {
  override get message(): string {
    const lines = this.problems.map((p) => `  - ${p.name}: ${p.message}`)
    return `invalid broker configuration (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n${lines.join("\n")}`
  }
}

const invalid = (message: string) => ConfigError.InvalidData([], message)

const parseListen = (raw: string): Either.Either<Listen, ConfigError.ConfigError> => {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw.trim())
  const port = m ? Number(m[2]) : Number.NaN
  if (!m?.[1] || !Number.isInteger(port) || port > 65535) {
    return Either.left(
      invalid(
        `expected HOST:PORT with a port from 0 to 65535 (e.g. 127.0.0.1:8787), got ${JSON.stringify(raw)}`
      )
    )
  }
  const host = m[1].startsWith("[") ? m[1].slice(1, -1) : m[1]
  return Either.right({ host, port })
}

const httpUrl =
  (what: string) =>
  (raw: string): Either.Either<string, ConfigError.ConfigError> => {
    try {
      const u = new URL(raw)
      if (u.protocol !== "http:" && u.protocol !== "https:") {
        return Either.left(invalid(`expected an http(s) URL for ${what}, got ${JSON.stringify(raw)}`))
      }
      return Either.right(raw.replace(/\/+$/, ""))
    } catch {
      return Either.left(invalid(`expected an http(s) URL for ${what}, got ${JSON.stringify(raw)}`))
    }
  }

const matching =
  (re: RegExp, expected: string) =>
  (raw: string): Either.Either<string, ConfigError.ConfigError> =>
    re.test(raw)
      ? Either.right(raw)
      : Either.left(invalid(`expected ${expected}, got ${JSON.stringify(raw)}`))

const nonEmpty =
  (expected: string) =>
  (raw: string): Either.Either<string, ConfigError.ConfigError> =>
    raw.trim().length > 0
      ? Either.right(raw)
      : Either.left(invalid(`expected ${expected}, got an empty value`))

const oneOf = <const A extends ReadonlyArray<string>>(name: string, values: A, fallback: A[number]) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) =>
      values.includes(raw)
        ? Either.right(raw as A[number])
        : Either.left(invalid(`expected one of ${values.join(", ")}, got ${JSON.stringify(raw)}`))
    ),
    Config.withDefault(fallback)
  )

const bucket = (name: string) =>
  Config.option(
    Config.string(name).pipe(
      Config.mapOrFail(
        matching(
          /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
          "an S3 bucket name (3-63 characters: lowercase letters, digits, '.', '-')"
        )
      )
    )
  )

const positiveInt = (name: string, fallback: number, max: number) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const n = Number(raw)
      return Number.isInteger(n) && n > 0 && n <= max
        ? Either.right(n)
        : Either.left(
            invalid(`expected a whole number of bytes from 1 to ${max}, got ${JSON.stringify(raw)}`)
          )
    }),
    Config.withDefault(fallback)
  )

const count = (name: string, fallback: number) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const n = Number(raw)
      return Number.isInteger(n) && n > 0 && n <= 1_000_000
        ? Either.right(n)
        : Either.left(invalid(`expected a whole number from 1 to 1000000, got ${JSON.stringify(raw)}`))
    }),
    Config.withDefault(fallback)
  )

const duration = (name: string, fallback: Duration.DurationInput, min: Duration.Duration) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const m = /^(\d+)\s*(ms|s|m|h)$/.exec(raw.trim()) ?? (raw.trim() === "0" ? ["0", "0", "ms"] : null)
      const unit = m?.[2]
      const value = m ? Number(m[1]) : Number.NaN
      const d =
        unit === "ms"
          ? Duration.millis(value)
          : unit === "s"
            ? Duration.seconds(value)
            : unit === "m"
              ? Duration.minutes(value)
              : unit === "h"
                ? Duration.hours(value)
                : undefined
      return d !== undefined && Duration.greaterThanOrEqualTo(d, min)
        ? Either.right(d)
        : Either.left(
            invalid(
              `expected a duration like 500ms, 10s, 5m or 1h of at least ${Duration.format(min)}, got ${JSON.stringify(raw)}`
            )
          )
    }),
    Config.withDefault(Duration.decode(fallback))
  )

/**
 * The configuration as an Effect `Config`, read from the environment.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<BrokerConfigShape> = Config.all({
  home: Config.string("AAP_HOME").pipe(
    Config.mapOrFail(nonEmpty("a directory path")),
    Config.withDefault("./.aap")
  ),
  listen: Config.string("AAP_LISTEN").pipe(
    Config.mapOrFail(parseListen),
    Config.withDefault({ host: "127.0.0.1", port: 8787 })
  ),
  catalogPath: Config.string("AAP_CATALOG").pipe(
    Config.mapOrFail(nonEmpty("a catalog file path")),
    Config.withDefault("examples/catalog.yaml")
  ),
  dynamodbEndpoint: Config.option(
    Config.string("AAP_DYNAMODB_ENDPOINT").pipe(Config.mapOrFail(httpUrl("the DynamoDB endpoint")))
  ),
  tablePrefix: Config.string("AAP_TABLE_PREFIX").pipe(
    Config.mapOrFail(
      matching(
        /^[A-Za-z0-9_.-]{1,200}$/,
        "1-200 characters from A-Z a-z 0-9 _ . - (a DynamoDB table name prefix)"
      )
    ),
    Config.withDefault("aap")
  ),
  kmsKeyId: Config.option(
    Config.string("AAP_KMS_KEY_ID").pipe(
      Config.mapOrFail(
        matching(
          /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_-]+|alias\/[A-Za-z0-9/_-]+|[0-9a-fA-F-]{36}|mrk-[0-9a-f]{32})$/,
          "a KMS key id, key ARN, alias name (alias/...) or alias ARN"
        )
      )
    )
  ),
  auditSink: oneOf("AAP_AUDIT_SINK", ["jsonl", "dynamodb"] as const, "jsonl"),
  vaultBucket: bucket("AAP_VAULT_BUCKET"),
  memoryBucket: bucket("AAP_MEMORY_BUCKET"),
  auditBucket: bucket("AAP_AUDIT_BUCKET"),
  s3Endpoint: Config.option(
    Config.string("AAP_S3_ENDPOINT").pipe(Config.mapOrFail(httpUrl("the S3 endpoint")))
  ),
  oidcIssuer: Config.option(
    Config.string("AAP_OIDC_ISSUER").pipe(Config.mapOrFail(httpUrl("the OIDC issuer (AWS needs https)")))
  ),
  region: Config.string("AWS_REGION").pipe(
    Config.mapOrFail(matching(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, "an AWS region such as eu-central-1")),
    Config.withDefault("us-east-1")
  ),
  maxBodyBytes: positiveInt("AAP_MAX_BODY_BYTES", 256 * 1024, 16 * 1024 * 1024),
  requestTimeout: duration("AAP_REQUEST_TIMEOUT", "10 seconds", Duration.millis(50)),
  shutdownGrace: duration("AAP_SHUTDOWN_GRACE", "10 seconds", Duration.millis(0)),
  cacheTtl: duration("AAP_CACHE_TTL", "2 seconds", Duration.millis(0)),
  secretCacheTtl: duration("AAP_SECRET_CACHE_TTL", "2 seconds", Duration.millis(0)),
  logLevel: oneOf("AAP_LOG_LEVEL", ["debug", "info", "warning", "error", "none"] as const, "info"),
  maxLiveSessionsPerAgent: count("AAP_MAX_LIVE_SESSIONS_PER_AGENT", 10),
  sessionRequestsPerMinute: count("AAP_SESSION_REQUESTS_PER_MINUTE", 30),
  workerInProcess: oneOf("AAP_WORKER_IN_PROCESS", ["auto", "on", "off"] as const, "auto")
})

const problemsOf = (error: ConfigError.ConfigError): Array<ConfigProblem> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...problemsOf(error.left), ...problemsOf(error.right)]
    default:
      return [{ name: error.path.join(".") || "configuration", message: error.message }]
  }
}

/**
 * Read and validate the configuration. Fails with every problem at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load: Effect.Effect<BrokerConfigShape, InvalidBrokerConfig> = config.pipe(
  Effect.mapError((error) => {
    const problems = problemsOf(error)
    const seen = new Set<string>()
    return new InvalidBrokerConfig({
      problems: problems.filter((p) => {
        const key = `${p.name}\u0000${p.message}`
        if (seen.has(key)) return false
        seen.add(key)
        return true
      })
    })
  })
)

/**
 * The defaults, with overrides — for embedding (`aap serve`) and tests.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (overrides: Partial<BrokerConfigShape> = {}): BrokerConfigShape => ({
  home: "./.aap",
  listen: { host: "127.0.0.1", port: 8787 },
  catalogPath: "examples/catalog.yaml",
  dynamodbEndpoint: Option.none(),
  tablePrefix: "aap",
  kmsKeyId: Option.none(),
  auditSink: "jsonl",
  vaultBucket: Option.none(),
  memoryBucket: Option.none(),
  auditBucket: Option.none(),
  s3Endpoint: Option.none(),
  oidcIssuer: Option.none(),
  region: "us-east-1",
  maxBodyBytes: 256 * 1024,
  requestTimeout: Duration.seconds(10),
  shutdownGrace: Duration.seconds(10),
  cacheTtl: Duration.seconds(2),
  secretCacheTtl: Duration.seconds(2),
  logLevel: "info",
  maxLiveSessionsPerAgent: 10,
  sessionRequestsPerMinute: 30,
  workerInProcess: "auto",
  ...overrides
})

/**
 * Whether the worker's jobs run inside the broker process (see `workerInProcess`).
 *
 * @since 0.1.0
 */
export const runsWorkerInProcess = (config: BrokerConfigShape): boolean =>
  config.workerInProcess === "on" ||
  (config.workerInProcess === "auto" && Option.isNone(config.dynamodbEndpoint))

/**
 * The issuer URL used for OIDC discovery: `AAP_OIDC_ISSUER` or `http://<listen>`.
 *
 * @since 0.1.0
 */
export const issuerUrl = (config: BrokerConfigShape, boundPort?: number): string =>
  Option.getOrElse(config.oidcIssuer, () => {
    const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host
    return `http://${host}:${boundPort ?? config.listen.port}`
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<BrokerConfig, InvalidBrokerConfig> = Layer.effect(BrokerConfig, load)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerValue = (value: BrokerConfigShape): Layer.Layer<BrokerConfig> =>
  Layer.succeed(BrokerConfig, value)
