/** Serves an issuer's discovery document and JWKS over real HTTP on loopback, as AWS would fetch them. */
import * as Http from "node:http"
import { Effect, Runtime } from "effect"
import type { OidcIssuer } from "../../../src/delivery/OidcIssuer.js"

export const serve = (issuer: () => OidcIssuer["Type"], runtime: Runtime.Runtime<never>) =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; port: number; hits: Array<string> }>((resume) => {
      const hits: Array<string> = []
      const server = Http.createServer((req, res) => {
        hits.push(req.url ?? "")
        const send = (body: unknown) => {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify(body))
        }
        if (req.url === "/.well-known/openid-configuration") return send(issuer().discovery)
        if (req.url === "/.well-known/jwks.json") {
          return Runtime.runPromise(runtime)(Effect.either(issuer().jwks)).then((r) => {
            if (r._tag === "Right") return send(r.right)
            res.writeHead(503)
            res.end()
          })
        }
        res.writeHead(404)
        res.end()
      })
      server.listen(0, "127.0.0.1", () => {
        const addr = server.address()
        resume(
          Effect.succeed({ server, hits, port: typeof addr === "object" && addr !== null ? addr.port : 0 })
        )
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
