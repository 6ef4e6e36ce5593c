/**
 * The one configured DynamoDB client every context uses, the table names of the three data
 * classes, idempotent table bootstrap from a {@link TableSpec} each context defines, and
 * {@link use}, which runs an SDK call with a timeout and translates its errors.
 *
 * The same code talks to the embedded dynalite, to any DynamoDB-compatible endpoint and to AWS
 * DynamoDB; only the layer differs.
 *
 * @since 0.1.0
 */
import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type Projection,
  type TableDescription
} from "@aws-sdk/client-dynamodb"
import {
  Clock,
  Config,
  type ConfigError,
  Context,
  Duration,
  Effect,
  Layer,
  Option,
  Redacted,
  Schedule,
  type Scope
} from "effect"
import * as Engine from "./Engine.js"
import { staticLocalSigner } from "./internal/signer.js"
import * as StoreError from "./StoreError.js"

/** Table names of the three data classes (DESIGN §2.7: separate stores, one per class). */
/** The name of the SDK middleware the client goes without. */
export const LOGGER_MIDDLEWARE = "loggerMiddleware"

export interface Tables {
  readonly vault: string
  readonly coordination: string
  readonly audit: string
}

export type TableClass = keyof Tables

export interface DynamoDbShape {
  readonly client: DynamoDBClient
  readonly tables: Tables
  /** The endpoint override, none for AWS's own endpoint resolution. */
  readonly endpoint: Option.Option<string>
  /** Upper bound for one call including the SDK's retries (default 5 seconds). */
  readonly timeout: Duration.Duration
}

export class DynamoDb extends Context.Tag("@aap/local-stack/DynamoDb")<DynamoDb, DynamoDbShape>() {}

/** `<prefix>-vault`, `<prefix>-coordination`, `<prefix>-audit`. */
export const tables = (prefix: string): Tables => ({
  vault: `${prefix}-vault`,
  coordination: `${prefix}-coordination`,
  audit: `${prefix}-audit`
})

/** Table prefixes: DynamoDB table-name characters, short enough for `-coordination`. */
export const isValidTablePrefix = (prefix: string): boolean => /^[A-Za-z0-9_.-]{1,200}$/.test(prefix)

export interface ClientOptions {
  /** Endpoint override (`http://127.0.0.1:8000`); omitted: AWS's regional endpoint. */
  readonly endpoint?: string | undefined
  /** Default `us-east-1` when an endpoint is given, else the SDK's region resolution. */
  readonly region?: string | undefined
  /** Default `aap`. */
  readonly tablePrefix?: string | undefined
  /** Static credentials; omitted: the SDK's default provider chain (env, profile, IMDS...). */
  readonly credentials?:
    | {
        readonly accessKeyId: string
        readonly secretAccessKey: Redacted.Redacted<string>
        readonly sessionToken?: Redacted.Redacted<string> | undefined
      }
    | undefined
  /**
   * `sigv4` (default) signs every request. `static-local` sends a well-formed but unsigned
   * Authorization header — only for an engine we started ourselves on loopback, which checks
   * the header's shape and never the signature (see decisions/0022).
   */
  readonly signing?: "sigv4" | "static-local" | undefined
  readonly timeout?: Duration.DurationInput | undefined
  readonly maxAttempts?: number | undefined
}

const localCredentials = { accessKeyId: "aap-local", secretAccessKey: "aap-local" }

/** Build the client; it is destroyed (its sockets closed) when the scope closes. */
export const make = (options: ClientOptions = {}): Effect.Effect<DynamoDbShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const region = options.region ?? (options.endpoint === undefined ? undefined : "us-east-1")
    const config: DynamoDBClientConfig = {
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(region === undefined ? {} : { region }),
      ...(options.credentials === undefined
        ? {}
        : {
            credentials: {
              accessKeyId: options.credentials.accessKeyId,
              secretAccessKey: Redacted.value(options.credentials.secretAccessKey),
              ...(options.credentials.sessionToken === undefined
                ? {}
                : { sessionToken: Redacted.value(options.credentials.sessionToken) })
            }
          }),
      ...(options.signing === "static-local" ? { httpAuthSchemes: [staticLocalSigner] } : {}),
      maxAttempts: options.maxAttempts ?? 3
    }
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = new DynamoDBClient(config)
        // The SDK's logger middleware redacts every call's input and output (a walk of both
        // against the operation's schema) to hand them to the logger, the default no-op one
        // included. Nothing is logged through it here; without it a Query costs ~9 % less client
        // CPU (ADR 0021).
        client.middlewareStack.remove(LOGGER_MIDDLEWARE)
        return client
      }),
      (client) => Effect.sync(() => client.destroy())
    )
    return {
      client,
      tables: tables(options.tablePrefix ?? "aap"),
      endpoint: Option.fromNullable(options.endpoint),
      timeout: Duration.decode(options.timeout ?? Duration.seconds(5))
    }
  })

/** A client for an explicit endpoint (a DynamoDB-compatible server, or a VPC endpoint). */
export const layerEndpoint = (
  options: ClientOptions & { readonly endpoint: string }
): Layer.Layer<DynamoDb> => Layer.scoped(DynamoDb, make(options))

/** A client for AWS DynamoDB with the SDK's own region and credential resolution. */
export const layerAws = (
  options: { readonly region?: string | undefined; readonly tablePrefix?: string | undefined } = {}
): Layer.Layer<DynamoDb> => Layer.scoped(DynamoDb, make(options))

export interface EmbeddedOptions {
  /** LevelDB directory; omitted: in memory (tests). */
  readonly dir?: string | undefined
  readonly tablePrefix?: string | undefined
  /** Default `static-local`: the engine is ours and on loopback (decisions/0022). */
  readonly signing?: "sigv4" | "static-local" | undefined
}

/** Start dynalite in-process and a client for it; both stop when the layer is released. */
export const makeEmbedded = (
  options: EmbeddedOptions = {}
): Effect.Effect<DynamoDbShape, Engine.EngineError, Scope.Scope> =>
  Effect.gen(function* () {
    const engine = yield* Engine.dynamo({ dir: options.dir })
    return yield* make({
      endpoint: engine.endpoint,
      region: "us-east-1",
      tablePrefix: options.tablePrefix,
      credentials: {
        accessKeyId: localCredentials.accessKeyId,
        secretAccessKey: Redacted.make(localCredentials.secretAccessKey)
      },
      signing: options.signing ?? "static-local"
    })
  })

export const layerEmbedded = (options: EmbeddedOptions = {}): Layer.Layer<DynamoDb, Engine.EngineError> =>
  Layer.scoped(DynamoDb, makeEmbedded(options))

const isLoopback = (endpoint: string): boolean => {
  try {
    const host = new URL(endpoint).hostname
    return host === "127.0.0.1" || host === "localhost" || host === "[::1]"
  } catch {
    return false
  }
}

/**
 * From the environment (DESIGN §13):
 * - `AAP_DYNAMODB_ENDPOINT` unset: the embedded engine on disk under `$AAP_HOME/data`
 *   (`AAP_HOME` default `./.aap`); a URL: that endpoint; the word `aws`: AWS DynamoDB with the
 *   SDK's standard region and credential resolution.
 * - `AAP_TABLE_PREFIX` (default `aap`), `AWS_REGION`.
 * A loopback endpoint without `AWS_ACCESS_KEY_ID` in the environment gets local dummy
 * credentials, so a DynamoDB Local on the same machine works without an AWS profile.
 */
export const layerConfig: Layer.Layer<DynamoDb, ConfigError.ConfigError | Engine.EngineError> =
  Layer.scopedContext(
    Effect.gen(function* () {
      const endpoint = yield* Config.option(
        Config.string("AAP_DYNAMODB_ENDPOINT").pipe(
          Config.validate({
            message: "AAP_DYNAMODB_ENDPOINT: expected `aws` or an http(s) URL such as http://127.0.0.1:8000",
            validation: (value) => value === "aws" || /^https?:\/\/[^\s]+$/.test(value)
          })
        )
      )
      const tablePrefix = yield* Config.string("AAP_TABLE_PREFIX").pipe(
        Config.validate({
          message: "AAP_TABLE_PREFIX: expected 1-200 characters of A-Z a-z 0-9 _ . -",
          validation: isValidTablePrefix
        }),
        Config.withDefault("aap")
      )
      const region = yield* Config.option(Config.string("AWS_REGION"))
      const home = yield* Config.string("AAP_HOME").pipe(Config.withDefault("./.aap"))
      const hasEnvCredentials = Option.isSome(yield* Config.option(Config.string("AWS_ACCESS_KEY_ID")))
      const shape = yield* Option.match(endpoint, {
        onNone: () => makeEmbedded({ dir: `${home}/data`, tablePrefix }),
        onSome: (url) =>
          url === "aws"
            ? make({ region: Option.getOrUndefined(region), tablePrefix })
            : make({
                endpoint: url,
                region: Option.getOrUndefined(region),
                tablePrefix,
                credentials:
                  isLoopback(url) && !hasEnvCredentials
                    ? {
                        accessKeyId: localCredentials.accessKeyId,
                        secretAccessKey: Redacted.make(localCredentials.secretAccessKey)
                      }
                    : undefined
              })
      })
      return Context.make(DynamoDb, shape)
    })
  )

/**
 * Waiting on an external system is measured by the wall clock, also under a TestClock: a test
 * that controls time for its domain logic must not freeze the store's timeouts and polls.
 */
const wallClock = Effect.withClock(Clock.make())

/**
 * Run one SDK call with the client, the configured timeout (the call is aborted through its
 * signal, on the wall clock also under a TestClock) and the error
 * translation of {@link StoreError.fromSdk}.
 */
export const use = <A>(
  operation: string,
  f: (client: DynamoDBClient, signal: AbortSignal) => Promise<A>
): Effect.Effect<A, StoreError.StoreFailure, DynamoDb> =>
  Effect.flatMap(DynamoDb, (shape) => useWith(shape, operation, f))

/**
 * {@link use} with the service already in hand, for adapters that resolved `DynamoDb` when
 * they were built: no service lookup and no context to provide per call.
 *
 * One `AbortController` per call serves both the deadline (a plain timer, cleared as soon as
 * the call settles) and interruption of the calling fiber. The previous form, an
 * `AbortSignal.timeout` plus `AbortSignal.any` per call, left a 5-second timer running after
 * every call and showed up in the vault's read-path profile (decisions/0023).
 */
export const useWith = <A>(
  shape: DynamoDbShape,
  operation: string,
  f: (client: DynamoDBClient, signal: AbortSignal) => Promise<A>
): Effect.Effect<A, StoreError.StoreFailure> =>
  Effect.async<A, StoreError.StoreFailure>((resume) => {
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, Duration.toMillis(shape.timeout))
    const settle = (error: unknown) => {
      clearTimeout(timer)
      resume(
        timedOut
          ? Effect.fail(new StoreError.StoreUnavailable({ operation, reason: "Timeout" }))
          : StoreError.fromSdk(operation)(error)
      )
    }
    let promise: Promise<A>
    try {
      promise = f(shape.client, controller.signal)
    } catch (error) {
      settle(error)
      return
    }
    promise.then((a) => {
      clearTimeout(timer)
      resume(Effect.succeed(a))
    }, settle)
    return Effect.sync(() => {
      clearTimeout(timer)
      controller.abort()
    })
  })

// ---------------------------------------------------------------------------------------------
// Table bootstrap
// ---------------------------------------------------------------------------------------------

/** A key attribute: a name (type string) or a name with its scalar type. */
export type KeyAttribute = string | { readonly name: string; readonly type: "S" | "N" }

export interface IndexSpec {
  readonly name: string
  readonly partitionKey: KeyAttribute
  readonly sortKey?: KeyAttribute | undefined
  /** `ALL`, `KEYS_ONLY`, or the non-key attributes to project. */
  readonly projection: "ALL" | "KEYS_ONLY" | { readonly include: ReadonlyArray<string> }
}

/**
 * A table as one context needs it. The context owns its spec (the vault its table, the audit
 * context its own, coordination its own with its GSIs); this module only creates it.
 */
export interface TableSpec {
  readonly table: TableClass
  readonly partitionKey: KeyAttribute
  readonly sortKey?: KeyAttribute | undefined
  readonly indexes?: ReadonlyArray<IndexSpec> | undefined
}

const attributeName = (key: KeyAttribute): string => (typeof key === "string" ? key : key.name)
const attributeType = (key: KeyAttribute): "S" | "N" => (typeof key === "string" ? "S" : key.type)

const keySchema = (
  partitionKey: KeyAttribute,
  sortKey: KeyAttribute | undefined
): Array<KeySchemaElement> => [
  { AttributeName: attributeName(partitionKey), KeyType: "HASH" },
  ...(sortKey === undefined ? [] : [{ AttributeName: attributeName(sortKey), KeyType: "RANGE" as const }])
]

const projection = (spec: IndexSpec["projection"]): Projection =>
  spec === "ALL" || spec === "KEYS_ONLY"
    ? { ProjectionType: spec }
    : { ProjectionType: "INCLUDE", NonKeyAttributes: [...spec.include] }

/** The CreateTable input for a spec under the configured name (exported for tests and docs). */
export const createTableInput = (name: string, spec: TableSpec) => {
  const keys = [
    spec.partitionKey,
    spec.sortKey,
    ...(spec.indexes ?? []).flatMap((i) => [i.partitionKey, i.sortKey])
  ]
  const definitions = new Map<string, AttributeDefinition>()
  for (const key of keys) {
    if (key !== undefined) {
      definitions.set(attributeName(key), {
        AttributeName: attributeName(key),
        AttributeType: attributeType(key)
      })
    }
  }
  const indexes: Array<GlobalSecondaryIndex> = (spec.indexes ?? []).map((index) => ({
    IndexName: index.name,
    KeySchema: keySchema(index.partitionKey, index.sortKey),
    Projection: projection(index.projection)
  }))
  return {
    TableName: name,
    BillingMode: "PAY_PER_REQUEST" as const,
    AttributeDefinitions: [...definitions.values()],
    KeySchema: keySchema(spec.partitionKey, spec.sortKey),
    ...(indexes.length === 0 ? {} : { GlobalSecondaryIndexes: indexes })
  }
}

const isActive = (table: TableDescription | undefined): boolean =>
  table?.TableStatus === "ACTIVE" &&
  (table.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === "ACTIVE")

/** Differences between what exists and what the spec asks for (keys and index names). */
const mismatch = (table: TableDescription, spec: TableSpec): Option.Option<string> => {
  const wanted = keySchema(spec.partitionKey, spec.sortKey)
  const actual = table.KeySchema ?? []
  const sameKeys =
    wanted.length === actual.length &&
    wanted.every((k, i) => actual[i]?.AttributeName === k.AttributeName && actual[i]?.KeyType === k.KeyType)
  if (!sameKeys) return Option.some("KeySchemaMismatch")
  const present = new Set((table.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName))
  const missing = (spec.indexes ?? []).filter((index) => !present.has(index.name)).map((index) => index.name)
  return missing.length === 0 ? Option.none() : Option.some(`MissingIndex:${missing.join(",")}`)
}

const describe = (name: string) =>
  use("DescribeTable", (client, signal) =>
    client.send(new DescribeTableCommand({ TableName: name }), { abortSignal: signal })
  ).pipe(
    Effect.map((out) => Option.fromNullable(out.Table)),
    Effect.catchIf(
      (error) => error._tag === "StoreUnavailable" && error.reason === "ResourceNotFoundException",
      () => Effect.succeedNone
    )
  )

/**
 * Create the table if it is missing (a concurrent creator's ResourceInUseException counts as
 * success), then wait until it and its indexes are ACTIVE (up to `waitFor`, default 2 minutes).
 * An existing table whose keys or indexes differ from the spec fails with StoreUnavailable
 * rather than being altered: schema changes are a migration, not a start-up side effect.
 */
export const ensureTable = (
  spec: TableSpec,
  options: { readonly waitFor?: Duration.DurationInput } = {}
): Effect.Effect<string, StoreError.StoreUnavailable | StoreError.Throttled, DynamoDb> =>
  Effect.gen(function* () {
    const { tables } = yield* DynamoDb
    const name = tables[spec.table]
    const existing = yield* describe(name)
    if (Option.isNone(existing)) {
      yield* use("CreateTable", (client, signal) =>
        client.send(new CreateTableCommand(createTableInput(name, spec)), { abortSignal: signal })
      ).pipe(
        Effect.catchIf(
          (error) => error._tag === "StoreUnavailable" && error.reason === "ResourceInUseException",
          () => Effect.void
        )
      )
    }
    const active = yield* describe(name).pipe(
      Effect.filterOrFail(
        (table) => Option.isSome(table) && isActive(table.value),
        () => new StoreError.StoreUnavailable({ operation: "DescribeTable", reason: "TableNotActive" })
      ),
      Effect.retry({
        schedule: Schedule.spaced(Duration.millis(100)),
        while: (error) => error._tag === "StoreUnavailable" && error.reason === "TableNotActive"
      }),
      Effect.timeoutFail({
        duration: options.waitFor ?? Duration.minutes(2),
        onTimeout: () =>
          new StoreError.StoreUnavailable({ operation: "DescribeTable", reason: "TableNotActive" })
      }),
      wallClock
    )
    if (Option.isSome(active)) {
      const difference = mismatch(active.value, spec)
      if (Option.isSome(difference)) {
        return yield* new StoreError.StoreUnavailable({ operation: "ensureTable", reason: difference.value })
      }
    }
    return name
  }).pipe(
    Effect.catchTag("ConditionFailed", () =>
      Effect.fail(new StoreError.StoreUnavailable({ operation: "ensureTable", reason: "ConditionFailed" }))
    ),
    Effect.withSpan("DynamoDb.ensureTable", { attributes: { table: spec.table } })
  )
