/**
 * Chain verification on a schedule (DESIGN §8, §12): walks every audit stream with
 * `AuditReader.verifyStream`. A break sets `aap_worker_audit_chain_breaks{stream,seq,reason}`
 * to 1 and logs an error naming the stream, the seq and the reason; a stream that verifies
 * again (after an operator restored it) has its gauge set back to 0.
 *
 * @since 0.1.0
 */
import { type AuditError, AuditReader } from "@aap/audit"
import { Effect } from "effect"
import { WorkerMetrics } from "./WorkerMetrics.js"

export interface Break {
  readonly stream: string
  readonly seq: number
  readonly reason: string
}

export interface Result {
  readonly streams: number
  readonly breaks: ReadonlyArray<Break>
}

export type Run = Effect.Effect<Result, AuditError.AuditUnavailable, AuditReader.AuditReader | WorkerMetrics>

/**
 * A verification job; it remembers the gauges it raised so a healed stream is lowered again.
 */
export const make = (): Run => {
  const raised = new Map<string, { seq: string; reason: string }>()
  return Effect.gen(function* () {
    const reader = yield* AuditReader.AuditReader
    const metrics = yield* WorkerMetrics
    const streams = yield* reader.streams
    const breaks: Array<Break> = []
    for (const stream of streams) {
      const { firstBreak } = yield* reader.verifyStream(stream)
      const previous = raised.get(stream)
      if (firstBreak === undefined) {
        if (previous !== undefined) {
          yield* metrics.set("aap_worker_audit_chain_breaks", 0, { stream, ...previous })
          raised.delete(stream)
        }
        continue
      }
      const labels = { seq: String(firstBreak.seq), reason: firstBreak.reason }
      if (previous !== undefined && (previous.seq !== labels.seq || previous.reason !== labels.reason)) {
        yield* metrics.set("aap_worker_audit_chain_breaks", 0, { stream, ...previous })
      }
      raised.set(stream, labels)
      yield* metrics.set("aap_worker_audit_chain_breaks", 1, { stream, ...labels })
      yield* Effect.logError(
        `audit chain broken: stream ${stream} at seq ${firstBreak.seq} (${firstBreak.reason})`
      ).pipe(Effect.annotateLogs({ stream, seq: firstBreak.seq, reason: firstBreak.reason }))
      breaks.push({ stream, seq: firstBreak.seq, reason: firstBreak.reason })
    }
    yield* metrics.inc("aap_worker_audit_verify_runs_total", {
      result: breaks.length === 0 ? "ok" : "broken"
    })
    return { streams: streams.length, breaks }
  }).pipe(Effect.withSpan("ChainVerification.run"))
}
