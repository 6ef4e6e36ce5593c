/**
 * `aap secret put|list|rm WALLET/NAME` (operators): the vault. The value is read from stdin or
 * `--file`, never from the command line (argv is visible to every local user through `ps`).
 */
import * as Fs from "node:fs"
import { Args, Command, Options, Prompt } from "@effect/cli"
import { Console, Effect, Option, Redacted } from "effect"
import { connection, json, printJson, usage, withClient } from "./common.js"

const address = Args.text({ name: "WALLET/NAME" }).pipe(
  Args.withDescription("the wallet, then the secret's name inside it (the name may contain /)")
)

const split = (raw: string) => {
  const i = raw.indexOf("/")
  const wallet = i < 0 ? raw : raw.slice(0, i)
  const name = i < 0 ? "" : raw.slice(i + 1)
  return /^[A-Za-z0-9_.-]+$/.test(wallet) && name !== "" && !name.startsWith("/") && !name.endsWith("/")
    ? Effect.succeed({ wallet, name })
    : usage(`expected WALLET/NAME (e.g. codex/openrouter/api-key), got ${JSON.stringify(raw)}`)
}

const readStdin = Effect.async<Buffer>((resume) => {
  const chunks: Array<Buffer> = []
  process.stdin.on("data", (c: Buffer) => chunks.push(c))
  process.stdin.once("end", () => resume(Effect.succeed(Buffer.concat(chunks))))
  process.stdin.once("error", () => resume(Effect.succeed(Buffer.concat(chunks))))
})

/** One trailing newline is dropped (`echo value | aap secret put`); the rest is kept as is. */
const chomp = (s: string) => s.replace(/\r?\n$/, "")

const readValue = (file: Option.Option<string>) =>
  Effect.gen(function* () {
    if (Option.isSome(file)) {
      const path = file.value
      const text = yield* Effect.try({
        try: () => Fs.readFileSync(path === "-" ? 0 : path, "utf8"),
        catch: (e) => (e as Error).message
      }).pipe(Effect.catchAll((m) => usage(`--file ${path}: ${m}`)))
      return chomp(text)
    }
    if (process.stdin.isTTY === true) {
      const entered = yield* Prompt.hidden({ message: "secret value" })
      return Redacted.value(entered)
    }
    return chomp((yield* readStdin).toString("utf8"))
  })

export const put = Command.make(
  "put",
  {
    address,
    file: Options.file("file").pipe(
      Options.withDescription("read the value from this file (default: stdin; prompted on a terminal)"),
      Options.optional
    ),
    json,
    ...connection
  },
  (o) =>
    Effect.gen(function* () {
      const { wallet, name } = yield* split(o.address)
      const value = yield* readValue(o.file)
      if (value.length === 0) return yield* usage("the secret value is empty")
      const result = yield* withClient(o, "operator", (client) =>
        client.secrets.put({
          path: { wallet, name },
          payload: { value: Redacted.make(value) }
        })
      )
      yield* o.json
        ? printJson({ wallet, name, version: result.version })
        : Console.log(`stored ${wallet}/${name} version ${result.version}`)
    })
).pipe(
  Command.withDescription(
    "Store a new version of a secret (operators). The value comes from stdin or --file, never argv."
  )
)

export const list = Command.make(
  "list",
  { wallet: Args.text({ name: "WALLET" }), json, ...connection },
  (o) =>
    withClient(o, "operator", (client) =>
      Effect.flatMap(client.secrets.list({ path: { wallet: o.wallet } }), (page) =>
        Effect.gen(function* () {
          if (o.json) {
            return yield* printJson({
              wallet: page.wallet,
              secrets: page.secrets.map((s) => ({
                name: s.name,
                version: s.version,
                versions: s.versions,
                createdAt: s.createdAt.toISOString(),
                updatedAt: s.updatedAt.toISOString()
              }))
            })
          }
          if (page.secrets.length === 0) return yield* Console.log(`no secrets in wallet ${o.wallet}`)
          for (const s of page.secrets) {
            yield* Console.log(`${o.wallet}/${s.name}  v${s.version}  updated ${s.updatedAt.toISOString()}`)
          }
        })
      )
    )
).pipe(Command.withDescription("List a wallet's secrets: names, versions, dates, never values (operators)."))

export const rm = Command.make("rm", { address, json, ...connection }, (o) =>
  Effect.gen(function* () {
    const { wallet, name } = yield* split(o.address)
    const result = yield* withClient(o, "operator", (client) =>
      client.secrets.delete({ path: { wallet, name } })
    )
    yield* o.json
      ? printJson({ wallet, name, version: result.version, deleted: true })
      : Console.log(`deleted ${wallet}/${name} (tombstone version ${result.version})`)
  })
).pipe(Command.withDescription("Delete a secret (operators): writes a tombstone version."))

export const secret = Command.make("secret").pipe(
  Command.withDescription("Store, list and delete vault secrets"),
  Command.withSubcommands([put, list, rm])
)
