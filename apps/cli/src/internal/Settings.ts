/**
 * Where the broker is and which token to present (DESIGN §11): flags, then the environment
 * (`AAP_URL`, `AAP_TOKEN`), then the credentials file written by `aap login`
 * (`$XDG_CONFIG_HOME/aap/credentials`, else `~/.config/aap/credentials`, mode 0600, refused
 * when group/world-accessible); operator commands also fall back to the token the embedded
 * broker wrote at `$AAP_HOME/operator.token`. Only `node:` modules: this is on the eager path.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Data, Effect, Option, Redacted } from "effect"

export const DEFAULT_URL = "http://127.0.0.1:8787"

/** A problem with the local settings (credentials file, token file): one line, exit `code`. */
export class SettingsError extends Data.TaggedError("SettingsError")<{
  readonly message: string
  readonly code: number
}> {}

export interface Credentials {
  readonly url: string
  readonly agent: string
  readonly token: string
}

export const credentialsPath = (env: NodeJS.ProcessEnv = process.env): string => {
  const xdg = env.XDG_CONFIG_HOME
  const base = xdg !== undefined && xdg !== "" ? xdg : Path.join(env.HOME ?? Os.homedir(), ".config")
  return Path.join(base, "aap", "credentials")
}

export const homeDir = (env: NodeJS.ProcessEnv = process.env): string =>
  env.AAP_HOME !== undefined && env.AAP_HOME !== "" ? env.AAP_HOME : "./.aap"

const modeProblem = (file: string, mode: number): string | undefined =>
  (mode & 0o077) !== 0
    ? `${file} is accessible by others (mode ${(mode & 0o777).toString(8).padStart(4, "0")}); run: chmod 600 ${file}`
    : undefined

/** A secret file (token, credentials): must exist, be a regular file and be private to its owner. */
export const readPrivateFile = (file: string): Effect.Effect<Option.Option<string>, SettingsError> =>
  Effect.suspend(() => {
    let stat: Fs.Stats
    try {
      stat = Fs.statSync(file)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return Effect.succeed(Option.none())
      return Effect.fail(
        new SettingsError({ message: `cannot read ${file}: ${(e as Error).message}`, code: 4 })
      )
    }
    if (!stat.isFile()) {
      return Effect.fail(new SettingsError({ message: `${file} is not a regular file`, code: 4 }))
    }
    const problem = modeProblem(file, stat.mode)
    if (problem !== undefined) return Effect.fail(new SettingsError({ message: problem, code: 4 }))
    try {
      return Effect.succeed(Option.some(Fs.readFileSync(file, "utf8")))
    } catch (e) {
      return Effect.fail(
        new SettingsError({ message: `cannot read ${file}: ${(e as Error).message}`, code: 4 })
      )
    }
  })

export const readCredentials = (
  env: NodeJS.ProcessEnv = process.env
): Effect.Effect<Option.Option<Credentials>, SettingsError> => {
  const file = credentialsPath(env)
  return Effect.flatMap(readPrivateFile(file), (text) =>
    Option.match(text, {
      onNone: () => Effect.succeed(Option.none()),
      onSome: (raw) => {
        try {
          const parsed: unknown = JSON.parse(raw)
          if (
            parsed !== null &&
            typeof parsed === "object" &&
            "url" in parsed &&
            "agent" in parsed &&
            "token" in parsed &&
            typeof parsed.url === "string" &&
            typeof parsed.agent === "string" &&
            typeof parsed.token === "string"
          ) {
            return Effect.succeed(Option.some({ url: parsed.url, agent: parsed.agent, token: parsed.token }))
          }
        } catch {
          // reported below
        }
        return Effect.fail(
          new SettingsError({
            message: `${file} is not a credentials file written by aap login; remove it and log in again`,
            code: 4
          })
        )
      }
    })
  )
}

/** Write the credentials file: directory 0700, file 0600, atomically (write + rename). */
export const writeCredentials = (
  credentials: Credentials,
  env: NodeJS.ProcessEnv = process.env
): Effect.Effect<string, SettingsError> =>
  Effect.try({
    try: () => {
      const file = credentialsPath(env)
      Fs.mkdirSync(Path.dirname(file), { recursive: true, mode: 0o700 })
      const tmp = `${file}.${process.pid}.tmp`
      Fs.writeFileSync(tmp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: "w" })
      Fs.chmodSync(tmp, 0o600)
      Fs.renameSync(tmp, file)
      return file
    },
    catch: (e) =>
      new SettingsError({ message: `cannot write the credentials file: ${(e as Error).message}`, code: 1 })
  })

/** Who the command acts as: decides the fallback order of token sources. */
export type Role = "agent" | "operator" | "any"

export interface ConnectionFlags {
  readonly url: Option.Option<string>
  readonly tokenFile: Option.Option<string>
}

export interface Connection {
  readonly url: string
  readonly token: Option.Option<Redacted.Redacted<string>>
  /** Where the token came from, for messages (`AAP_TOKEN`, a file path). */
  readonly tokenSource: string
}

const normaliseUrl = (raw: string, from: string): Effect.Effect<string, SettingsError> =>
  Effect.suspend(() => {
    try {
      const u = new URL(raw)
      if (u.protocol === "http:" || u.protocol === "https:") return Effect.succeed(raw.replace(/\/+$/, ""))
    } catch {
      // reported below
    }
    return Effect.fail(
      new SettingsError({ message: `${from}: expected an http(s) URL, got ${JSON.stringify(raw)}`, code: 2 })
    )
  })

const nonEmpty = (s: string | undefined): Option.Option<string> =>
  s === undefined || s.trim() === "" ? Option.none() : Option.some(s.trim())

/**
 * Resolve URL and token. Order: `--url` / `--token-file`, `AAP_URL` / `AAP_TOKEN`, the
 * credentials file; operator commands try `$AAP_HOME/operator.token` before the credentials
 * file (an agent token there would only earn a 403).
 */
export const resolve = (
  flags: ConnectionFlags,
  role: Role,
  env: NodeJS.ProcessEnv = process.env
): Effect.Effect<Connection, SettingsError> =>
  Effect.gen(function* () {
    const operatorFile = Path.join(homeDir(env), "operator.token")
    let credentials: Option.Option<Credentials> | undefined
    const creds = () =>
      credentials !== undefined
        ? Effect.succeed(credentials)
        : Effect.tap(readCredentials(env), (c) => {
            credentials = c
          })

    let token: Option.Option<string> = Option.none()
    let tokenSource = "none"
    if (Option.isSome(flags.tokenFile)) {
      const text = yield* readPrivateFile(flags.tokenFile.value)
      if (Option.isNone(text)) {
        return yield* new SettingsError({
          message: `--token-file ${flags.tokenFile.value}: no such file`,
          code: 2
        })
      }
      token = nonEmpty(text.value)
      tokenSource = flags.tokenFile.value
    } else if (Option.isSome(nonEmpty(env.AAP_TOKEN))) {
      token = nonEmpty(env.AAP_TOKEN)
      tokenSource = "AAP_TOKEN"
    } else {
      const sources =
        role === "operator"
          ? (["operator", "credentials"] as const)
          : role === "agent"
            ? (["credentials"] as const)
            : (["credentials", "operator"] as const)
      for (const source of sources) {
        if (source === "credentials") {
          const c = yield* creds()
          if (Option.isSome(c)) {
            token = Option.some(c.value.token)
            tokenSource = credentialsPath(env)
            break
          }
        } else {
          const text = yield* readPrivateFile(operatorFile)
          if (Option.isSome(text) && Option.isSome(nonEmpty(text.value))) {
            token = nonEmpty(text.value)
            tokenSource = operatorFile
            break
          }
        }
      }
    }

    let url: string
    if (Option.isSome(flags.url)) url = yield* normaliseUrl(flags.url.value, "--url")
    else if (Option.isSome(nonEmpty(env.AAP_URL))) url = yield* normaliseUrl(env.AAP_URL ?? "", "AAP_URL")
    else {
      const c = yield* creds()
      url = Option.isSome(c) ? yield* normaliseUrl(c.value.url, credentialsPath(env)) : DEFAULT_URL
    }
    return { url, token: Option.map(token, Redacted.make), tokenSource }
  })
