/**
 * `aap keys init|rotate|status`: the local keyring under `$AAP_HOME` (no broker). Rotation
 * adds a primary master key version; older versions keep decrypting. Stop the embedded broker
 * before rotating: it holds the keyring in memory (docs/cli.md).
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { ExitCode } from "../ExitCode.js"
import * as Settings from "../internal/Settings.js"
import { json, printJson } from "./common.js"

const home = Options.directory("home").pipe(
  Options.withDescription("AAP_HOME (default: $AAP_HOME, else ./.aap)"),
  Options.optional
)

const load = Effect.promise(() => {
  // The KMS client's module warns about Node 20 support (ADR 0004 pins Node 20).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true"
  return import("../internal/Keys.js")
})
const homeOf = (h: Option.Option<string>) => Option.getOrElse(h, () => Settings.homeDir())

const fail = (e: { readonly message: string; readonly code: number }) =>
  Effect.zipRight(Console.error(`aap: ${e.message}`), new ExitCode({ code: e.code }))

export const init = Command.make("init", { home, json }, (o) =>
  Effect.gen(function* () {
    const K = yield* load
    const dir = homeOf(o.home)
    const existed = K.exists(dir)
    const d = yield* K.withProvider(dir, (p) => p.describe()).pipe(Effect.catchAll(fail))
    if (o.json) return yield* printJson({ created: !existed, ...K.toJson(d) })
    yield* Console.log(
      `${existed ? "keyring already exists" : "created keyring"} at ${K.keyringPath(dir)} (0600)\n${K.render(d)}`
    )
  })
).pipe(
  Command.withDescription(
    "Create the local keyring under AAP_HOME (idempotent: an existing keyring is kept)."
  )
)

export const rotate = Command.make("rotate", { home, json }, (o) =>
  Effect.gen(function* () {
    const K = yield* load
    const dir = homeOf(o.home)
    if (!K.exists(dir))
      return yield* fail({ message: `no keyring at ${K.keyringPath(dir)}; run aap keys init`, code: 1 })
    const d = yield* K.withProvider(dir, (p) => p.rotate()).pipe(Effect.catchAll(fail))
    if (o.json) return yield* printJson(K.toJson(d))
    yield* Console.log(`rotated: new primary key ${d.primaryKeyId}\n${K.render(d)}`)
  })
).pipe(
  Command.withDescription(
    "Add a new primary master key version (older versions still decrypt). Stop the broker first."
  )
)

export const status = Command.make("status", { home, json }, (o) =>
  Effect.gen(function* () {
    const K = yield* load
    const dir = homeOf(o.home)
    if (!K.exists(dir))
      return yield* fail({ message: `no keyring at ${K.keyringPath(dir)}; run aap keys init`, code: 1 })
    const d = yield* K.withProvider(dir, (p) => p.describe()).pipe(Effect.catchAll(fail))
    yield* o.json ? printJson(K.toJson(d)) : Console.log(K.render(d))
  })
).pipe(
  Command.withDescription(
    "Show the local keyring: master key versions, primary, wallets. Never key material."
  )
)

export const keys = Command.make("keys").pipe(
  Command.withDescription("Manage the local keyring"),
  Command.withSubcommands([init, rotate, status])
)
