/**
 * The standalone worker's own listener (not the broker's): `GET /healthz` (liveness, with each
 * job's status as JSON) and `GET /metrics` (Prometheus text). Bind it to loopback or a private
 * interface; it serves no secret, but job names and error tags are operational detail.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Data, Effect, Layer, Option, Runtime } from "effect"
import { Worker } from "./Worker.js"

export class ListenError extends Data.TaggedError("ListenError")<{
  readonly address: string
  readonly reason: string
}> {
  override get message(): string {
    return `worker listener cannot bind ${this.address}: ${this.reason}`
  }
}

export interface Listening {
  readonly url: string
  readonly port: number
}

/** Options become their value or null (Option's own toJSON runs before any replacer). */
const plain = (value: unknown): unknown => {
  if (Option.isOption(value)) return Option.match(value, { onNone: () => null, onSome: plain })
  if (Array.isArray(value)) return value.map(plain)
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  }
  return value
}

const json = (value: unknown) => JSON.stringify(plain(value))

/** Serve until the scope closes. */
export const serve = (options: {
  readonly host: string
  readonly port: number
}): Effect.Effect<Listening, ListenError, Worker | import("effect").Scope.Scope> =>
  Effect.gen(function* () {
    const worker = yield* Worker
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runPromise(runtime)
    const server = Http.createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0]
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end()
        return
      }
      if (path === "/healthz") {
        run(worker.status).then(
          (jobs) => {
            res.writeHead(200, { "content-type": "application/json" }).end(json({ status: "ok", jobs }))
          },
          () => res.writeHead(500).end()
        )
        return
      }
      if (path === "/metrics") {
        run(worker.metrics).then(
          (text) =>
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(text),
          () => res.writeHead(500).end()
        )
        return
      }
      res
        .writeHead(404, { "content-type": "application/json" })
        .end('{"_tag":"NotFound","message":"not found"}')
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number, ListenError>((resume) => {
        const onError = (e: Error) =>
          resume(
            Effect.fail(new ListenError({ address: `${options.host}:${options.port}`, reason: e.message }))
          )
        server.once("error", onError)
        server.listen(options.port, options.host, () => {
          server.off("error", onError)
          resume(Effect.succeed((server.address() as AddressInfo).port))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    const host = options.host.includes(":") ? `[${options.host}]` : options.host
    return { url: `http://${host}:${port}`, port }
  })

/** {@link serve} as a layer (the standalone process). */
export const layer = (options: {
  readonly host: string
  readonly port: number
}): Layer.Layer<never, ListenError, Worker> =>
  Layer.scopedDiscard(
    Effect.flatMap(serve(options), (l) => Effect.logInfo(`worker listening on ${l.url} (/healthz, /metrics)`))
  )
