/**
 * The node server's `clientError` replies (src/internal/clientError.ts): a JSON body with
 * `_tag` for methods that take one, none for `HEAD` (a body there breaks the client's framing).
 */
import * as Http from "node:http"
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { onClientError } from "../src/internal/clientError.js"

const server = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<Http.Server>((resolve) => {
        const s = Http.createServer((_req, res) => res.end("ok"))
        s.on("clientError", onClientError)
        s.listen(0, "127.0.0.1", () => resolve(s))
      })
  ),
  (s) => Effect.promise(() => new Promise<void>((resolve) => s.close(() => resolve())))
)

const portOf = (s: Http.Server) => (s.address() as Net.AddressInfo).port

const raw = (port: number, bytes: string) =>
  Effect.promise(
    () =>
      new Promise<string>((resolve, reject) => {
        const socket = Net.connect(port, "127.0.0.1", () => socket.end(bytes))
        let out = ""
        socket.setEncoding("latin1")
        socket.on("data", (d: string) => {
          out += d
        })
        socket.on("close", () => resolve(out))
        socket.on("error", reject)
      })
  )

/** A request through node's own client: its parser refuses a body after a HEAD reply's headers. */
const viaClient = (port: number, method: string) =>
  Effect.promise(
    () =>
      new Promise<{ status: number; body: string } | { error: string }>((resolve) => {
        const q = Http.request(
          { host: "127.0.0.1", port, method, path: "/x", headers: { "x-big": "h".repeat(20_000) } },
          (res) => {
            let body = ""
            res.setEncoding("utf8")
            res.on("data", (d: string) => {
              body += d
            })
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
          }
        )
        q.on("error", (e) => resolve({ error: String(e) }))
        q.end()
      })
  )

const bodyOf = (reply: string) => reply.slice(reply.indexOf("\r\n\r\n") + 4)

describe("clientError", () => {
  it.scoped("headers over the limit: 431 with a JSON body, without one for HEAD", () =>
    Effect.gen(function* () {
      const port = portOf(yield* server)
      const get = yield* raw(port, `GET /x HTTP/1.1\r\nhost: x\r\nx-pad: ${"a".repeat(20_000)}\r\n\r\n`)
      assert.match(get, /^HTTP\/1\.1 431 /)
      assert.strictEqual(JSON.parse(bodyOf(get))._tag, "HeadersTooLarge")
      const head = yield* raw(port, `HEAD /x HTTP/1.1\r\nhost: x\r\nx-pad: ${"a".repeat(20_000)}\r\n\r\n`)
      assert.match(head, /^HTTP\/1\.1 431 /)
      assert.strictEqual(bodyOf(head), "")
      assert.notMatch(head, /content-length/i)
      assert.deepStrictEqual(yield* viaClient(port, "HEAD"), { status: 431, body: "" })
      const viaGet = yield* viaClient(port, "GET")
      assert.strictEqual("status" in viaGet ? JSON.parse(viaGet.body)._tag : viaGet.error, "HeadersTooLarge")
    })
  )

  it.scoped("unframed bytes: 400 with a JSON body", () =>
    Effect.gen(function* () {
      const port = portOf(yield* server)
      const garbage = yield* raw(port, "GARBAGE\r\n\r\n")
      assert.match(garbage, /^HTTP\/1\.1 400 /)
      assert.deepStrictEqual(JSON.parse(bodyOf(garbage)), {
        _tag: "BadRequest",
        message: "malformed HTTP request"
      })
    })
  )
})
