/**
 * `aap worker`. `@aap/worker` exports its jobs but not yet a runnable whole (`makeWorker`);
 * until it does, this says so plainly instead of pretending to run.
 */
import { Data, Effect } from "effect"

export class WorkerError extends Data.TaggedError("WorkerError")<{ readonly message: string }> {}

export const run: Effect.Effect<never, WorkerError> = Effect.fail(
  new WorkerError({
    message:
      "the worker is not available in this build yet (@aap/worker has no runnable entry point); sessions still expire lazily on every read"
  })
)
