/**
 * A loopback stand-in for the four IAM actions the STS deny list uses (`ListRolePolicies`,
 * `GetRolePolicy`, `PutRolePolicy`, `DeleteRolePolicy`), over a real socket and IAM's query
 * protocol (form-encoded POST, XML answers, `NoSuchEntity` as a 404 `ErrorResponse`), so the
 * AWS SDK's own `IAMClient` talks to it with only an `endpoint` setting.
 *
 * It keeps the roles' inline policies, records every call, enforces the 10,240-character
 * aggregate inline policy limit, and can leave one mutating call unanswered (see {@link Hold}).
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"

export interface Call {
  readonly action: string
  readonly role: string
  readonly policy: string | undefined
  /** The SigV4 credential scope the SDK signed for, e.g. `us-east-1/iam/aws4_request`. */
  readonly scope: string | undefined
}

/**
 * Leave the `at`-th mutating call (PutRolePolicy/DeleteRolePolicy, 1-based over `mutations`)
 * unanswered: with `applied` IAM has made the change (the caller never hears), otherwise not.
 */
export interface Hold {
  readonly at: number
  readonly applied: boolean
  readonly onHeld: () => void
}

export interface FakeIam {
  endpoint: string
  readonly calls: Array<Call>
  /** The mutating calls received, in order. */
  readonly mutations: Array<Call>
  /** The mutating calls that changed the state, in order. */
  readonly applied: Array<Call>
  readonly held: Array<Call>
  /** Role name → policy name → document (decoded JSON text). */
  readonly roles: Map<string, Map<string, string>>
  hold: Hold | undefined
}

const NS = "https://iam.amazonaws.com/doc/2010-05-08/"
const xml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
const size = (doc: string) => doc.replace(/\s/g, "").length

export const make = (): Effect.Effect<FakeIam, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ fake: FakeIam; server: Http.Server }>((resume) => {
      const fake: FakeIam = {
        endpoint: "",
        calls: [],
        mutations: [],
        applied: [],
        held: [],
        roles: new Map(),
        hold: undefined
      }
      let requestId = 0
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"))
          const action = form.get("Action") ?? ""
          const role = form.get("RoleName") ?? ""
          const policy = form.get("PolicyName") ?? undefined
          const scope = /Credential=[^/]+\/\d{8}\/([^,]+),/.exec(req.headers.authorization ?? "")?.[1]
          const call: Call = { action, role, policy, scope }
          fake.calls.push(call)
          const rid = `req-${++requestId}`
          const ok = (body: string) =>
            res
              .writeHead(200, { "content-type": "text/xml" })
              .end(
                `<${action}Response xmlns="${NS}">${body}<ResponseMetadata><RequestId>${rid}</RequestId></ResponseMetadata></${action}Response>`
              )
          const error = (status: number, code: string, message: string) =>
            res
              .writeHead(status, { "content-type": "text/xml" })
              .end(
                `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>${rid}</RequestId></ErrorResponse>`
              )
          if (req.method !== "POST" || form.get("Version") !== "2010-05-08") {
            error(400, "InvalidAction", "not an IAM query request")
            return
          }
          const policies = fake.roles.get(role)
          if (policies === undefined) {
            error(404, "NoSuchEntity", `The role with name ${role} cannot be found.`)
            return
          }
          const mutating = action === "PutRolePolicy" || action === "DeleteRolePolicy"
          let hold: Hold | undefined
          if (mutating) {
            fake.mutations.push(call)
            if (fake.hold?.at === fake.mutations.length) hold = fake.hold
          }
          const apply = (): (() => void) | undefined => {
            switch (action) {
              case "ListRolePolicies": {
                const members = [...policies.keys()]
                  .sort()
                  .map((n) => `<member>${xml(n)}</member>`)
                  .join("")
                return () =>
                  ok(
                    `<ListRolePoliciesResult><PolicyNames>${members}</PolicyNames><IsTruncated>false</IsTruncated></ListRolePoliciesResult>`
                  )
              }
              case "GetRolePolicy": {
                const doc = policy === undefined ? undefined : policies.get(policy)
                if (doc === undefined)
                  return () =>
                    error(404, "NoSuchEntity", `The role policy with name ${policy} cannot be found.`)
                return () =>
                  ok(
                    `<GetRolePolicyResult><RoleName>${xml(role)}</RoleName><PolicyName>${xml(policy ?? "")}</PolicyName><PolicyDocument>${xml(encodeURIComponent(doc))}</PolicyDocument></GetRolePolicyResult>`
                  )
              }
              case "PutRolePolicy": {
                const doc = form.get("PolicyDocument") ?? ""
                try {
                  JSON.parse(doc)
                } catch {
                  return () => error(400, "MalformedPolicyDocument", "not JSON")
                }
                let total = size(doc)
                for (const [n, d] of policies) if (n !== policy) total += size(d)
                if (total > 10_240)
                  return () => error(409, "LimitExceeded", "Maximum policy size of 10240 bytes exceeded")
                policies.set(policy ?? "", doc)
                fake.applied.push(call)
                return () => ok("")
              }
              case "DeleteRolePolicy": {
                if (policy === undefined || !policies.delete(policy))
                  return () =>
                    error(404, "NoSuchEntity", `The role policy with name ${policy} cannot be found.`)
                fake.applied.push(call)
                return () => ok("")
              }
              default:
                return undefined
            }
          }
          if (hold !== undefined && !hold.applied) {
            fake.held.push(call)
            hold.onHeld()
            return
          }
          const answer = apply()
          if (answer === undefined) {
            error(400, "InvalidAction", `${action} is not implemented by the fake`)
            return
          }
          if (hold !== undefined) {
            fake.held.push(call)
            hold.onHeld()
            return
          }
          answer()
        })
      })
      server.listen(0, "127.0.0.1", () => {
        fake.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
        resume(Effect.succeed({ fake, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ fake }) => fake))
