/**
 * The audit log's write side (DESIGN §8): one writer per process appends to its own
 * hash-chained stream; concurrent appends are group-committed; `append` returns only once
 * the event is durable and fails with `AuditUnavailable` otherwise, within its timeout.
 *
 * @since 0.1.0
 */
import { Context, type Duration, Effect, Layer } from "effect"
import type { AuditUnavailable } from "./AuditError.js"
import type { AuditEvent, AuditInput, Checkpoint } from "./AuditEvent.js"
import * as AuditKeys from "./AuditKeys.js"
import * as AuditReader from "./AuditReader.js"
import * as AuditSink from "./AuditSink.js"
import { makeWriter } from "./internal/writer.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface AuditLogShape {
  /**
   * Append an event to this writer's stream. Succeeds with the stored event once it is
   * durable; fails with `AuditUnavailable` when the sink fails, the keys are unavailable,
   * the backlog is full, or the timeout elapses. Never hangs.
   */
  readonly append: (input: AuditInput) => Effect.Effect<AuditEvent, AuditUnavailable>
  /** The stream this writer appends to (a new one after a sink failure). */
  readonly stream: Effect.Effect<string>
  /** Sign and store a checkpoint of the stream's durable head. */
  readonly checkpoint: Effect.Effect<Checkpoint, AuditUnavailable>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AuditLog extends Context.Tag("@aap/audit/AuditLog")<AuditLog, AuditLogShape>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Names the writer in its stream id (`<instance>-<ULID>`); default: the host name. */
  readonly instanceId?: string | undefined
  /** How long `append` may take before it fails (default 5 seconds). */
  readonly appendTimeout?: Duration.DurationInput | undefined
  /** Most events in one durable write (default 1024, capped by the sink). */
  readonly maxBatch?: number | undefined
  /** Most appends waiting for a write; beyond it `append` fails at once (default 65536). */
  readonly maxPending?: number | undefined
  /** Seal a checkpoint this often when the stream advanced (default: only on close). */
  readonly checkpointInterval?: Duration.DurationInput | undefined
}

/**
 * The writer over an `AuditSink` and `AuditKeys`. Opens a new stream on start; on close it
 * waits for queued appends (up to the append timeout) and seals a final checkpoint.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: Options
): Layer.Layer<AuditLog, AuditUnavailable, AuditSink.AuditSink | AuditKeys.AuditKeys> =>
  Layer.scoped(
    AuditLog,
    Effect.gen(function* () {
      const sink = yield* AuditSink.AuditSink
      const keys = yield* AuditKeys.AuditKeys
      return AuditLog.of(yield* makeWriter(sink, keys, options))
    })
  )

/**
 * `layerWith` with the defaults.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<AuditLog, AuditUnavailable, AuditSink.AuditSink | AuditKeys.AuditKeys> =
  layerWith({})

/**
 * A complete audit log in memory, for other contexts' tests: a real hash chain, the reader,
 * and `MemorySink` to make the sink fail (`setMode("fail")`) or hang (`setMode("hang")`).
 * Appends time out after `appendTimeout` (default 1 second; under `TestClock` advance the
 * clock or use `it.live`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryWith = (
  options: Options
): Layer.Layer<AuditLog | AuditReader.AuditReader | AuditSink.MemorySink | AuditKeys.AuditKeys> =>
  Layer.mergeAll(
    layerWith({ appendTimeout: "1 second", instanceId: "memory", ...options }),
    AuditReader.layer
  ).pipe(Layer.provideMerge(AuditSink.layerMemory), Layer.provideMerge(AuditKeys.layerEphemeral), Layer.orDie)

/**
 * `layerMemoryWith` with the defaults.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<
  AuditLog | AuditReader.AuditReader | AuditSink.MemorySink | AuditKeys.AuditKeys
> = layerMemoryWith({})
