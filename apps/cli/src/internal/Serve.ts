/**
 * `aap serve`: the broker in this process (embedded mode by default). Loaded lazily: it pulls in
 * the whole broker, the AWS SDK clients and the embedded engine.
 */
import { Broker, BrokerConfig } from "@aap/broker"
import { Data, Effect } from "effect"

export class ServeError extends Data.TaggedError("ServeError")<{ readonly message: string }> {}

export const serve: Effect.Effect<never, ServeError> = Effect.gen(function* () {
  const config = yield* BrokerConfig.load
  return yield* Broker.run(config)
}).pipe(Effect.mapError((e) => new ServeError({ message: e.message })))
