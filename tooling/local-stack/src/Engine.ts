/**
 * The embedded engines, started in-process on 127.0.0.1 with an ephemeral port:
 * `dynalite` (the DynamoDB API over LevelDB, in memory or on disk) and `s3rver` (the S3 API
 * over a directory). Each is a scoped resource: leaving the scope closes the server and, for
 * dynalite on disk, the LevelDB store, so the same directory can be opened again.
 *
 * @since 0.1.0
 */
/// <reference path="./internal/vendor.d.ts" />
import { mkdirSync } from "node:fs"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import type { S3ClientConfig } from "@aws-sdk/client-s3"
import dynalite from "dynalite"
import { Data, Effect, Option, type Scope } from "effect"
import S3rver from "s3rver"

/** The engine could not start (directory not writable, port not bindable, store locked). */
export class EngineError extends Data.TaggedError("EngineError")<{
  readonly engine: "dynalite" | "s3rver"
  readonly reason: string
}> {
  override get message(): string {
    return `${this.engine} could not start: ${this.reason}`
  }
}

/** A running dynalite. */
export interface DynamoEngine {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string
  readonly port: number
  /** The LevelDB directory, or none when the data lives in memory. */
  readonly dir: Option.Option<string>
}

/** A running s3rver. */
export interface S3Engine {
  readonly endpoint: string
  readonly port: number
  readonly dir: string
}

const reasonOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const listen = (server: Server): Effect.Effect<number, EngineError> =>
  Effect.async<number, EngineError>((resume) => {
    const onError = (error: Error) =>
      resume(Effect.fail(new EngineError({ engine: "dynalite", reason: error.message })))
    server.once("error", onError)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", onError)
      resume(Effect.succeed((server.address() as AddressInfo).port))
    })
  })

const closeServer = (server: Server): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    server.close((error) => {
      resume(
        error === undefined || error === null
          ? Effect.void
          : Effect.logWarning("dynalite did not close cleanly", reasonOf(error))
      )
    })
    // Keep-alive sockets of clients that were not destroyed would hold `close` open.
    server.closeIdleConnections()
  })

/**
 * Start dynalite in memory (no `dir`) or on disk under `dir` (created if missing). Tables are
 * created, updated and deleted immediately (no CREATING delay).
 */
export const dynamo = (
  options: { readonly dir?: string | undefined } = {}
): Effect.Effect<DynamoEngine, EngineError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const dir = options.dir
      if (dir !== undefined) {
        yield* Effect.try({
          try: () => mkdirSync(dir, { recursive: true, mode: 0o700 }),
          catch: (cause) => new EngineError({ engine: "dynalite", reason: reasonOf(cause) })
        })
      }
      const server = yield* Effect.try({
        try: () =>
          dynalite({
            createTableMs: 0,
            deleteTableMs: 0,
            updateTableMs: 0,
            ...(dir === undefined ? {} : { path: dir })
          }),
        catch: (cause) => new EngineError({ engine: "dynalite", reason: reasonOf(cause) })
      })
      const port = yield* listen(server)
      return { server, port, dir: Option.fromNullable(dir) }
    }),
    ({ server }) => closeServer(server)
  ).pipe(
    Effect.map(({ port, dir }) => ({ endpoint: `http://127.0.0.1:${port}`, port, dir })),
    Effect.withSpan("Engine.dynamo")
  )

/**
 * Start s3rver on a directory (created if missing), optionally creating buckets. Clients must
 * use {@link s3ClientConfig}: path-style addressing and checksums only when required (s3rver
 * stores aws-chunked bodies verbatim otherwise, corrupting every upload).
 */
export const s3 = (options: {
  readonly dir: string
  readonly buckets?: ReadonlyArray<string>
}): Effect.Effect<S3Engine, EngineError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        mkdirSync(options.dir, { recursive: true, mode: 0o700 })
        const server = new S3rver({
          address: "127.0.0.1",
          port: 0,
          silent: true,
          directory: options.dir,
          configureBuckets: (options.buckets ?? []).map((name) => ({ name }))
        })
        const address = await server.run()
        return { server, port: address.port }
      },
      catch: (cause) => new EngineError({ engine: "s3rver", reason: reasonOf(cause) })
    }),
    ({ server }) =>
      Effect.tryPromise(() => server.close()).pipe(
        Effect.catchAll((error) => Effect.logWarning("s3rver did not close cleanly", reasonOf(error)))
      )
  ).pipe(
    Effect.map(({ port }) => ({ endpoint: `http://127.0.0.1:${port}`, port, dir: options.dir })),
    Effect.withSpan("Engine.s3")
  )

/** The S3 client settings s3rver needs (credentials are s3rver's fixed pair). */
export const s3ClientConfig = (endpoint: string): S3ClientConfig => ({
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
  credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }
})
