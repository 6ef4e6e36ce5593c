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
  /**
   * Leave the `at`-th call (1-based, counted in `calls`) unanswered: with `applied` the key is
   * deleted first (the provider did it, the caller never hears), otherwise nothing happens.
   * `onHeld` runs once the call is held; the call is added to `held`.
   */
  hold: Hold | undefined
  readonly held: Array<Call>
}

export interface Hold {
  readonly at: number
  readonly applied: boolean
  readonly onHeld: () => void
}

export const make = (managementKey: string): Effect.Effect<FakeOpenRouter, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ fake: FakeOpenRouter; server: Http.Server }>((resume) => {
      const fake: FakeOpenRouter = {
        baseUrl: "",
        calls: [],
        script: [],
        fallback: 200,
        live: new Set(),
        hold: undefined,
        held: []
      }
      const server = Http.createServer((req, res) => {
        const call = {
          method: req.method ?? "",
          path: req.url ?? "",
          authorization: req.headers.authorization
        }
        fake.calls.push(call)
        const hold = fake.hold?.at === fake.calls.length ? fake.hold : undefined
        if (hold !== undefined) {
          const m = /^\/api\/v1\/keys\/([^/]+)$/.exec(req.url ?? "")
          if (hold.applied && m !== null && req.headers.authorization === `Bearer ${managementKey}`)
            fake.live.delete(decodeURIComponent(m[1] ?? ""))
          fake.held.push(call)
          hold.onHeld()
          return
        }
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
