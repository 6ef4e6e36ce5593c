/**
 * Options and helpers shared by the command groups. Eager path: only `@effect/cli`, `effect`
 * and `node:` modules here; everything that talks to the broker is behind `loadClient`.
 */
import { Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { ExitCode } from "../ExitCode.js"
import * as Settings from "../internal/Settings.js"

export const url = Options.text("url").pipe(
  Options.withDescription(
    `broker URL (default: $AAP_URL, the credentials file, else ${Settings.DEFAULT_URL})`
  ),
  Options.optional
)

export const tokenFile = Options.file("token-file").pipe(
  Options.withDescription(
    "file holding the bearer token, mode 0600 (default: $AAP_TOKEN, the credentials file; operators: $AAP_HOME/operator.token)"
  ),
  Options.optional
)

export const connection = { url, tokenFile }

export const json = Options.boolean("json").pipe(Options.withDescription("print the result as JSON"))

export const reason = Options.text("reason").pipe(
  Options.withDescription("why (recorded in the session and the audit log)"),
  Options.optional
)

/** The typed client, loaded on first use (keeps the contexts off the `--version` path). */
export const loadClient = Effect.promise(() => import("../internal/Client.js"))

/** Resolve the connection for `role`, then run `f` with a typed client. */
export const withClient = <A, E>(
  flags: Settings.ConnectionFlags,
  role: Settings.Role,
  f: (client: import("../internal/Client.js").Client, connection: Settings.Connection) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const connection = yield* Settings.resolve(flags, role)
    const C = yield* loadClient
    return yield* C.call(connection, (client) => f(client, connection))
  })

/** Print a JSON document on stdout. */
export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

/** A usage problem found by the command itself: message on stderr, exit 2. */
export const usage = (message: string) =>
  Effect.zipRight(Console.error(`aap: ${message}`), new ExitCode({ code: 2 }))

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/** `90`, `90s`, `15m`, `1h`, `1h30m` → seconds. */
export const parseDuration = (raw: string): Option.Option<number> => {
  const text = raw.trim()
  if (/^\d+$/.test(text)) return Number(text) > 0 ? Option.some(Number(text)) : Option.none()
  const re = /(\d+)([smhd])/gy
  let total = 0
  let consumed = 0
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (UNITS[m[2] ?? "s"] ?? 1)
    consumed = re.lastIndex
  }
  return consumed === text.length && total > 0 ? Option.some(total) : Option.none()
}

export const formatSeconds = (seconds: number): string => {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return m === 0 ? `${h}h` : `${h}h${m}m`
}

export const ttlOption = Options.text("ttl").pipe(
  Options.withDescription("session lifetime, e.g. 900, 15m, 1h (default: the capability's default)"),
  Options.optional
)

export const ttlSeconds = (ttl: Option.Option<string>) =>
  Option.match(ttl, {
    onNone: () => Effect.succeed(Option.none<number>()),
    onSome: (raw) =>
      Option.match(parseDuration(raw), {
        onNone: () => usage(`--ttl ${JSON.stringify(raw)}: expected a duration such as 900, 15m or 1h`),
        onSome: (n) => Effect.succeed(Option.some(n))
      })
  })
