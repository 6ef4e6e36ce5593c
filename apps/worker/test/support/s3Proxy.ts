/**
 * A loopback HTTP proxy in front of an S3 endpoint (s3rver in the tests): it forwards every
 * request unchanged (the `host` header too, so SigV4 signatures still verify), records each
 * PutObject it received and each one the store accepted, and can leave one PutObject
 * unanswered (see {@link Hold}).
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"

/**
 * Leave the `at`-th PutObject (1-based) received since the hold was set, among those whose key
 * satisfies `match` (default: all), unanswered: with `applied` it is forwarded and stored first
 * (the caller never hears), otherwise it is never forwarded.
 */
export interface Hold {
  readonly at: number
  readonly applied: boolean
  readonly match?: ((key: string) => boolean) | undefined
  readonly onHeld: () => void
}

export interface S3Proxy {
  endpoint: string
  /** Object keys (`<bucket>/<key>`) of the PutObject requests received, in order. */
  readonly puts: Array<string>
  /** Object keys of the PutObject requests the store answered with 2xx, in order. */
  readonly stored: Array<string>
  readonly held: Array<string>
  hold: Hold | undefined
}

export const make = (upstream: string): Effect.Effect<S3Proxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ proxy: S3Proxy; server: Http.Server }>((resume) => {
      const target = new URL(upstream)
      const proxy: S3Proxy = { endpoint: "", puts: [], stored: [], held: [], hold: undefined }
      let armed: Hold | undefined
      let matched = 0
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const url = new URL(req.url ?? "/", "http://proxy")
          const key = decodeURIComponent(url.pathname.slice(1))
          // PutObject only (the SDK tags it `?x-id=PutObject`): not CreateBucket (no key), not
          // multipart or sub-resource PUTs (other query strings).
          const isPut =
            req.method === "PUT" &&
            key.includes("/") &&
            (url.search === "" || url.searchParams.get("x-id") === "PutObject")
          let hold: Hold | undefined
          if (isPut) {
            proxy.puts.push(key)
            if (proxy.hold !== armed) {
              armed = proxy.hold
              matched = 0
            }
            if (armed !== undefined && (armed.match?.(key) ?? true) && ++matched === armed.at) hold = armed
          }
          if (hold !== undefined && !hold.applied) {
            proxy.held.push(key)
            hold.onHeld()
            return
          }
          const forwarded = Http.request(
            {
              host: target.hostname,
              port: target.port,
              method: req.method,
              path: req.url,
              headers: req.headers
            },
            (answer) => {
              const parts: Array<Buffer> = []
              answer.on("data", (c: Buffer) => parts.push(c))
              answer.on("end", () => {
                const status = answer.statusCode ?? 502
                if (isPut && status >= 200 && status < 300) proxy.stored.push(key)
                if (hold !== undefined) {
                  proxy.held.push(key)
                  hold.onHeld()
                  return
                }
                const headers = { ...answer.headers }
                delete headers["transfer-encoding"]
                res.writeHead(status, headers).end(Buffer.concat(parts))
              })
            }
          )
          forwarded.on("error", () => res.destroy())
          forwarded.end(Buffer.concat(chunks))
        })
      })
      server.listen(0, "127.0.0.1", () => {
        proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
        resume(Effect.succeed({ proxy, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ proxy }) => proxy))
