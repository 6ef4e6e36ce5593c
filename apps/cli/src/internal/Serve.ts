/**
 * `aap serve`: the broker in this process (embedded mode by default). Loaded lazily: it pulls in
 * the whole broker, the AWS SDK clients and the embedded engine.
 *
 * In embedded mode (and with `AAP_WORKER_IN_PROCESS=on`) the worker's jobs run here too, over
 * the broker's own services: the embedded engine's data can be open in one process only, so a
 * single-machine operator needs this one command (expiry sweeps, upstream key revocation,
 * re-wrap, audit verification and, with `AAP_AUDIT_BUCKET`, checkpoints and shipping).
 */
import { Broker, BrokerConfig } from "@aap/broker"
import { Standalone, WorkerConfig } from "@aap/worker"
import { Data, Effect } from "effect"

export class ServeError extends Data.TaggedError("ServeError")<{ readonly message: string }> {}

/** Whether the environment names AWS credentials the SDK's default chain would use. */
const awsCredentialsConfigured = (): boolean =>
  [
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
  ].some((name) => (process.env[name] ?? "") !== "")

const background = (config: BrokerConfig.BrokerConfigShape) =>
  Effect.gen(function* () {
    if (!BrokerConfig.runsWorkerInProcess(config)) return undefined
    const worker = yield* WorkerConfig.fromEnv.pipe(
      Effect.mapError((e) => new ServeError({ message: `invalid worker configuration: ${e.message}` }))
    )
    // On one machine without AWS credentials the STS deny list cannot reach IAM: with `auto`,
    // the job is left out (its "not configured" line says so) rather than failing every run.
    const stsDeny = worker.stsDeny === "auto" && !awsCredentialsConfigured() ? "off" : worker.stsDeny
    return Standalone.layerInProcess({ ...worker, stsDeny, catalogPath: config.catalogPath })
  })

export const serve: Effect.Effect<never, ServeError> = Effect.gen(function* () {
  const config = yield* BrokerConfig.load.pipe(Effect.mapError((e) => new ServeError({ message: e.message })))
  const jobs = yield* background(config)
  return yield* Broker.run(config, { background: jobs }).pipe(
    Effect.mapError((e) => new ServeError({ message: e.message }))
  )
})
