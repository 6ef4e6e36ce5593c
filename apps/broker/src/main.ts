/**
 * `node apps/broker/src/main.ts` (via tsx): the broker with configuration from the environment.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Broker from "./Broker.js"
import * as BrokerConfig from "./BrokerConfig.js"

const program = Effect.gen(function* () {
  const config = yield* BrokerConfig.load
  return yield* Broker.run(config)
}).pipe(
  Effect.catchAll((error) =>
    Effect.sync(() => {
      process.stderr.write(`aap broker: ${error.message}\n`)
      process.exitCode = 2
    })
  )
)

NodeRuntime.runMain(program, { disablePrettyLogger: true })
