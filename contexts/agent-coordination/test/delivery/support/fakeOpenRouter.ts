/**
 * A loopback HTTP server that follows OpenRouter's documented key-management API:
 * `POST /api/v1/keys` and `DELETE /api/v1/keys/{hash}`, management key as Bearer.
 */
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import { Effect } from "effect"

export interface Recorded {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
  readonly body: unknown
}

export interface FakeOpenRouter {
  readonly baseUrl: string
  readonly requests: Array<Recorded>
  /** hash → { key, name, expires_at, limit } of keys that exist. */
  readonly keys: Map<string, { key: string; name: string; expires_at: string | null; limit: number | null }>
  /** Make the next N requests answer with this status. */
  failNext: { status: number; count: number } | undefined
}

const json = (res: Http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

const error = (res: Http.ServerResponse, code: number, message: string) =>
  json(res, code, { error: { code, message, metadata: null }, user_id: null })

export const start = (managementKey: string) =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; fake: FakeOpenRouter }>((resume) => {
      const fake: FakeOpenRouter = { baseUrl: "", requests: [], keys: new Map(), failNext: undefined }
      const server = Http.createServer((req, res) => {
        let raw = ""
        req.on("data", (c: Buffer) => {
          raw += c.toString()
        })
        req.on("end", () => {
          let body: unknown
          try {
            body = raw === "" ? undefined : JSON.parse(raw)
          } catch {
            return error(res, 400, "Invalid JSON")
          }
          const path = req.url ?? ""
          fake.requests.push({
            method: req.method ?? "",
            path,
            authorization: req.headers.authorization,
            body
          })
          if (fake.failNext !== undefined && fake.failNext.count > 0) {
            fake.failNext.count--
            return error(res, fake.failNext.status, "injected failure")
          }
          if (req.headers.authorization !== `Bearer ${managementKey}`)
            return error(res, 401, "Invalid management key")
          if (req.method === "POST" && (path === "/api/v1/keys" || path === "/api/v1/keys/")) {
            const b = body as Record<string, unknown> | undefined
            if (typeof b?.name !== "string" || b.name === "") return error(res, 400, "name is required")
            if (b.limit !== undefined && b.limit !== null && typeof b.limit !== "number") {
              return error(res, 400, "limit must be a number")
            }
            const expires = b.expires_at
            if (expires !== undefined && expires !== null) {
              if (
                typeof expires !== "string" ||
                !expires.endsWith("Z") ||
                Number.isNaN(Date.parse(expires))
              ) {
                return error(res, 400, "expires_at must be an ISO 8601 UTC timestamp")
              }
            }
            const hash = Crypto.randomBytes(32).toString("hex")
            const key = `sk-or-v1-${Crypto.randomBytes(32).toString("hex")}`
            const limit = typeof b.limit === "number" ? b.limit : null
            fake.keys.set(hash, {
              key,
              name: b.name,
              expires_at: (expires as string | undefined) ?? null,
              limit
            })
            return json(res, 201, {
              data: {
                hash,
                name: b.name,
                label: b.name,
                disabled: false,
                limit,
                limit_remaining: limit,
                limit_reset: null,
                include_byok_in_limit: false,
                usage: 0,
                created_at: new Date().toISOString(),
                updated_at: null,
                expires_at: expires ?? null
              },
              key
            })
          }
          const m = /^\/api\/v1\/keys\/([^/]+)$/.exec(path)
          if (req.method === "DELETE" && m !== null) {
            const hash = decodeURIComponent(m[1]!)
            if (!fake.keys.delete(hash)) return error(res, 404, "Key not found")
            return json(res, 200, { deleted: true })
          }
          return error(res, 404, "Not found")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const addr = server.address()
        const port = typeof addr === "object" && addr !== null ? addr.port : 0
        Object.assign(fake, { baseUrl: `http://127.0.0.1:${port}` })
        resume(Effect.succeed({ server, fake }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ fake }) => fake))
