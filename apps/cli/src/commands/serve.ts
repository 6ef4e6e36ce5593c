/**
 * `aap serve` (the broker) and `aap worker` (the background jobs) in this process. Both are
 * configured from the environment (DESIGN §13); the flags below set the matching variables.
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { ExitCode } from "../ExitCode.js"

const env = (name: string, value: Option.Option<string>) =>
  Effect.sync(() => {
    if (Option.isSome(value)) process.env[name] = value.value
  })

const options = {
  listen: Options.text("listen").pipe(
    Options.withDescription(
      "HOST:PORT to listen on (sets AAP_LISTEN; default 127.0.0.1:8787, port 0 picks one)"
    ),
    Options.optional
  ),
  home: Options.text("home").pipe(
    Options.withDescription("state directory (sets AAP_HOME; default ./.aap)"),
    Options.optional
  ),
  catalog: Options.text("catalog").pipe(
    Options.withDescription("catalog file (sets AAP_CATALOG; default examples/catalog.yaml)"),
    Options.optional
  )
}

const workerOption = Options.choice("worker", ["auto", "on", "off"]).pipe(
  Options.withDescription(
    "run the worker's jobs in this process (sets AAP_WORKER_IN_PROCESS; auto: in embedded mode only)"
  ),
  Options.optional
)

export const serve = Command.make("serve", { ...options, worker: workerOption }, (o) =>
  Effect.gen(function* () {
    yield* env("AAP_WORKER_IN_PROCESS", o.worker)
    yield* env("AAP_LISTEN", o.listen)
    yield* env("AAP_HOME", o.home)
    yield* env("AAP_CATALOG", o.catalog)
    // Normally unreachable: bin.ts hands `aap serve` to dist/daemon.mjs before @effect/cli runs.
    yield* Console.error(
      "aap serve: run it as `aap serve` (the broker is a separate bundle, dist/daemon.mjs)"
    )
    return yield* new ExitCode({ code: 2 })
  })
).pipe(
  Command.withDescription(
    "Run the broker (embedded mode unless AAP_DYNAMODB_ENDPOINT / AAP_KMS_KEY_ID are set). Prints where it listens and, on the first start, where the operator token was written. Ctrl-C drains and stops."
  )
)

export const worker = Command.make("worker", { home: options.home, catalog: options.catalog }, () =>
  Effect.gen(function* () {
    // Normally unreachable: bin.ts hands `aap worker` to dist/daemon.mjs before @effect/cli runs.
    yield* Console.error(
      "aap worker: run it as `aap worker` (the worker is a separate bundle, dist/daemon.mjs)"
    )
    return yield* new ExitCode({ code: 2 })
  })
).pipe(
  Command.withDescription(
    "Run the standalone background worker (for a DynamoDB endpoint; in embedded mode the broker runs the jobs itself): expiry sweeps, upstream revocation, STS deny list, re-wrap, audit checkpoints and shipping, chain verification."
  )
)
