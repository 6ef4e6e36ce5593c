/**
 * A loopback stand-in for OpenRouter's key API (`DELETE /api/v1/keys/{hash}`), over a real
 * socket. Its behaviour per call is programmable: answer with a status, or drop the connection.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"

export interface Call {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
}

export interface FakeOpenRouter {
  baseUrl: string
  readonly calls: Array<Call>
  /** Status for the next calls, in order; when exhausted, `fallback`. */
  readonly script: Array<number | "drop">
  fallback: number | "drop"
  /** Keys that exist upstream; a DELETE of another hash answers 404. */
  readonly live: Set<string>
}

export const make = (managementKey: string): Effect.Effect<FakeOpenRouter, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ fake: FakeOpenRouter; server: Http.Server }>((resume) => {
      const fake: FakeOpenRouter = { baseUrl: "", calls: [], script: [], fallback: 200, live: new Set() }
      const server = Http.createServer((req, res) => {
        fake.calls.push({
          method: req.method ?? "",
          path: req.url ?? "",
          authorization: req.headers.authorization
        })
        const next = fake.script.length > 0 ? fake.script.shift() : fake.fallback
        if (next === "drop") {
          req.socket.destroy()
          return
        }
        const m = /^\/api\/v1\/keys\/([^/]+)$/.exec(req.url ?? "")
        if (req.method !== "DELETE" || m === null) {
          res.writeHead(405).end()
          return
        }
        if (req.headers.authorization !== `Bearer ${managementKey}`) {
          res.writeHead(401, { "content-type": "application/json" }).end('{"error":{"code":401}}')
          return
        }
        if (next !== 200) {
          res.writeHead(next ?? 500, { "content-type": "application/json" }).end('{"error":{}}')
          return
        }
        const hash = decodeURIComponent(m[1] ?? "")
        if (!fake.live.delete(hash)) {
          res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":404}}')
          return
        }
        res.writeHead(200, { "content-type": "application/json" }).end('{"deleted":true}')
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        fake.baseUrl = `http://127.0.0.1:${port}`
        resume(Effect.succeed({ fake, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ fake }) => fake))
