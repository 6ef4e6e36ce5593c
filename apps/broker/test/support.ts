import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect } from "effect"

export const catalogFile = Path.resolve(__dirname, "../../../examples/catalog.yaml")

export const tempHome = (): string => Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-broker-test-"))

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The parsed JSON object body, `{}` when the body is not a JSON object. */
  readonly json: Record<string, unknown>
}

/** One HTTP request over a real socket; JSON bodies are parsed when possible. */
export const call = (
  base: string,
  method: string,
  path: string,
  init: { token?: string | undefined; body?: string | undefined; headers?: Record<string, string> } = {}
): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...init.headers }
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
    if (init.body !== undefined) headers["content-type"] ??= "application/json"
    const res = await fetch(base + path, {
      method,
      headers,
      ...(init.body === undefined ? {} : { body: init.body })
    })
    const text = await res.text()
    let json: Record<string, unknown> = {}
    try {
      const parsed: unknown = JSON.parse(text)
      json = parsed !== null && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {}
    } catch {
      json = {}
    }
    return { status: res.status, headers: res.headers, text, json }
  })

export const post = (base: string, path: string, token: string | undefined, body: unknown = {}) =>
  call(base, "POST", path, { token, body: JSON.stringify(body) })
