/**
 * Expiry sweep (DESIGN §9, §12): moves every live session whose deadline has passed to
 * `expired` and audits `session.expired`, through the coordination context's `Sessions.sweep`.
 *
 * - Due sessions are found through the `byStatus` GSI with a key condition on the deadline
 *   (`SessionRepository.listDue`): the work is proportional to the number of due sessions,
 *   never to the table (no Scan).
 * - Each expiry is a conditional update on the session's version; of racing sweepers (or a
 *   sweeper racing a lazy read) exactly one wins and only the winner audits.
 * - Restart safety: a session already expired is no longer in the live partitions, so a
 *   killed sweep started again picks up exactly the sessions still due.
 *
 * @since 0.1.0
 */
import { type Errors, Sessions } from "@aap/agent-coordination"
import { Effect } from "effect"
import { WorkerMetrics } from "./WorkerMetrics.js"

export interface Options {
  /** Sessions per batch (one GSI query page each). Default 100. */
  readonly batchSize?: number | undefined
  /** Upper bound of batches in one run, so one run always ends. Default 1,000. */
  readonly maxBatches?: number | undefined
}

export interface Result {
  /** Sessions this run moved to expired. */
  readonly expired: number
  readonly batches: number
}

export const run = (
  options: Options = {}
): Effect.Effect<Result, Errors.Tampered | Errors.Unavailable, Sessions.Sessions | WorkerMetrics> =>
  Effect.gen(function* () {
    const sessions = yield* Sessions.Sessions
    const metrics = yield* WorkerMetrics
    const batchSize = options.batchSize ?? 100
    const maxBatches = options.maxBatches ?? 1_000
    let expired = 0
    let batches = 0
    while (batches < maxBatches) {
      const n = yield* sessions.sweep(batchSize)
      batches++
      expired += n
      if (n > 0) yield* metrics.inc("aap_worker_sessions_expired_total", undefined, n)
      // Fewer than a full batch means the due range is drained (or other sweepers took the rest).
      if (n < batchSize) break
    }
    return { expired, batches }
  }).pipe(Effect.withSpan("ExpirySweep.run"))
