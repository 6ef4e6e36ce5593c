/**
 * The typed client of the broker, derived from its `HttpApi` (`HttpApiClient.make`), and the
 * one-line rendering of everything that can go wrong talking to it. Loaded lazily (dynamic
 * `import()`), never on the `--version` / `--help` path: the contract pulls in the contexts.
 */
import { Api } from "@aap/broker"
import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Data, Effect, Option, Redacted } from "effect"
import type { Connection } from "./Settings.js"

export const make = (connection: Connection) =>
  HttpApiClient.make(Api, {
    baseUrl: connection.url,
    transformClient: (client) =>
      Option.match(connection.token, {
        onNone: () => client,
        onSome: (token) => HttpClient.mapRequest(client, HttpClientRequest.bearerToken(Redacted.value(token)))
      })
  }).pipe(Effect.provide(FetchHttpClient.layer))

export type Client = Effect.Effect.Success<ReturnType<typeof make>>

/** A broker call failed: `message` is one line; `code` is the process exit code (ADR 0060). */
export class BrokerError extends Data.TaggedError("BrokerError")<{
  readonly message: string
  readonly code: number
  readonly tag: string
}> {}

/** Exit codes by error tag (ADR 0060). */
const codeOf = (tag: string): number => {
  switch (tag) {
    case "Unauthorized":
    case "Forbidden":
    case "SelfApproval":
    case "UnknownOperator":
      return 4
    case "Unavailable":
    case "AuditUnavailable":
    case "ShuttingDown":
    case "RequestTimeout":
    case "CredentialUnavailable":
    case "VaultUnavailable":
    case "NotReady":
    case "RateLimited":
      return 3
    default:
      return 1
  }
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, " ").trim()

const hint = (tag: string, connection: Connection): string => {
  if (tag !== "Unauthorized") return ""
  return Option.isNone(connection.token)
    ? " (no token: run aap login --code CODE, set AAP_TOKEN, or pass --token-file)"
    : ` (token from ${connection.tokenSource})`
}

/** Any failure of a typed-client call, as one line with its exit code. */
export const explain =
  (connection: Connection) =>
  (error: unknown): BrokerError => {
    if (error instanceof BrokerError) return error
    const e = error as { readonly _tag?: unknown; readonly message?: unknown; readonly reason?: unknown }
    const tag = typeof e?._tag === "string" ? e._tag : "Error"
    if (tag === "RequestError") {
      const cause = (error as { cause?: { cause?: { code?: string }; message?: string } }).cause
      const detail = cause?.cause?.code ?? cause?.message ?? String(e.reason)
      return new BrokerError({
        message: `cannot reach the broker at ${connection.url} (${detail}); is it running? (aap serve)`,
        code: 3,
        tag
      })
    }
    if (tag === "ResponseError") {
      const status = (error as { response?: { status?: number } }).response?.status
      return new BrokerError({
        message:
          status === 404
            ? `the broker at ${connection.url} does not serve this endpoint (HTTP 404); is it an aap broker of this version?`
            : `unexpected reply from the broker at ${connection.url} (HTTP ${status ?? "?"}, ${String(e.reason)})`,
        code: status === 503 ? 3 : 1,
        tag
      })
    }
    if (tag === "ParseError") {
      return new BrokerError({
        message: `unexpected reply from the broker at ${connection.url}`,
        code: 1,
        tag
      })
    }
    const message = typeof e?.message === "string" && e.message !== "" ? e.message : tag
    return new BrokerError({
      message: `${oneLine(message)} (${tag})${hint(tag, connection)}`,
      code: codeOf(tag),
      tag
    })
  }

/** Run `f` with a client for `connection`; every failure becomes a `BrokerError`. */
export const call = <A, E>(
  connection: Connection,
  f: (client: Client) => Effect.Effect<A, E>
): Effect.Effect<A, BrokerError> =>
  Effect.flatMap(make(connection), f).pipe(Effect.mapError(explain(connection)))
