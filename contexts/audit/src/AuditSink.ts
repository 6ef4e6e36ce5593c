/**
 * Where audit records are stored. One port, several adapters (memory, JSONL files,
 * DynamoDB), one conformance suite (`test/AuditSinkConformance.ts`).
 *
 * A sink stores lines (the exact bytes the hash covers, ADR 0031) per stream, in seq order,
 * and checkpoint lines per stream. It never interprets a line: parsing and verification live
 * in the log and the reader, so a tampered line reaches `verify` as it is.
 *
 * @since 0.1.0
 */
import { Context, Data, Effect, Layer, Stream } from "effect"

/**
 * A storage operation failed. Mapped by the log to `AuditUnavailable`.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuditSinkError extends Data.TaggedError("AuditSinkError")<{
  readonly operation: string
  readonly message: string
}> {}

/**
 * One stored record: its position in the stream (1-based; for DynamoDB the sort key) and
 * its line.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredLine {
  readonly position: number
  readonly line: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AuditSinkShape {
  readonly kind: string
  /** Largest batch one `write` accepts. */
  readonly maxBatch: number
  /** Create a new stream (its writer calls this once, before the first write). */
  readonly open: (stream: string) => Effect.Effect<void, AuditSinkError>
  /**
   * Durably append consecutive records to a stream: when this succeeds every record is
   * stored (one fsync, one BatchWriteItem, ...). On failure a prefix may be stored.
   */
  readonly write: (
    stream: string,
    records: ReadonlyArray<{ readonly seq: number; readonly line: string }>
  ) => Effect.Effect<void, AuditSinkError>
  /** The writer is done with a stream (releases files and locks). */
  readonly close: (stream: string) => Effect.Effect<void>
  /** Every stream id, sorted. */
  readonly streams: Effect.Effect<ReadonlyArray<string>, AuditSinkError>
  /** The records of a stream from position `from` on, in order. */
  readonly scan: (stream: string, from: number) => Stream.Stream<StoredLine, AuditSinkError>
  /**
   * The records of a stream as UTF-8 bytes, newline-terminated lines, in order, in chunks
   * that end on a line boundary (for `verify`, which reads and hashes the bytes in place).
   * The consumer may modify a chunk while it holds it; a chunk is valid only until the next
   * one is pulled (a sink may reuse its buffer), so a consumer must not keep it.
   */
  readonly bytes: (stream: string) => Stream.Stream<Uint8Array, AuditSinkError>
  /** Durably store a checkpoint line of a stream. */
  readonly writeCheckpoint: (stream: string, seq: number, line: string) => Effect.Effect<void, AuditSinkError>
  /** The checkpoint lines of a stream, oldest first. */
  readonly checkpoints: (stream: string) => Effect.Effect<ReadonlyArray<string>, AuditSinkError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AuditSink extends Context.Tag("@aap/audit/AuditSink")<AuditSink, AuditSinkShape>() {}

/**
 * How the memory sink behaves: store normally, fail every write, or never answer.
 *
 * @since 0.1.0
 * @category models
 */
export type MemoryMode = "ok" | "fail" | "hang"

/**
 * Control of the memory sink, for tests: make it fail or hang, read or rewrite its lines.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemorySinkShape {
  readonly setMode: (mode: MemoryMode) => Effect.Effect<void>
  readonly lines: (stream: string) => Effect.Effect<ReadonlyArray<string>>
  readonly setLines: (stream: string, lines: ReadonlyArray<string>) => Effect.Effect<void>
  readonly setCheckpoints: (stream: string, lines: ReadonlyArray<string>) => Effect.Effect<void>
  /** Number of successful `write` calls so far (one per group-committed batch). */
  readonly writes: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MemorySink extends Context.Tag("@aap/audit/MemorySink")<MemorySink, MemorySinkShape>() {}

interface MemoryState {
  readonly records: Map<string, Array<string>>
  readonly open: Set<string>
  readonly checkpoints: Map<string, Array<string>>
  mode: MemoryMode
  writes: number
}

const memoryFailure = (operation: string) =>
  new AuditSinkError({ operation, message: "memory sink is set to fail" })

const gate = <A, E>(
  state: MemoryState,
  operation: string,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E | AuditSinkError> =>
  Effect.suspend(
    (): Effect.Effect<A, E | AuditSinkError> =>
      state.mode === "fail"
        ? Effect.fail(memoryFailure(operation))
        : state.mode === "hang"
          ? Effect.never
          : effect
  )

/**
 * An in-memory sink with a control handle (`MemorySink`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<AuditSink | MemorySink> = Layer.effectContext(
  Effect.gen(function* () {
    const state: MemoryState = {
      records: new Map(),
      open: new Set(),
      checkpoints: new Map(),
      mode: "ok",
      writes: 0
    }
    const sink = AuditSink.of({
      kind: "memory",
      maxBatch: 4096,
      open: (stream) =>
        gate(
          state,
          "open",
          Effect.suspend(() => {
            if (state.records.has(stream)) {
              return Effect.fail(new AuditSinkError({ operation: "open", message: "stream exists" }))
            }
            state.records.set(stream, [])
            state.open.add(stream)
            return Effect.void
          })
        ),
      write: (stream, records) =>
        gate(
          state,
          "write",
          Effect.suspend(() => {
            if (!state.open.has(stream)) {
              return Effect.fail(new AuditSinkError({ operation: "write", message: "stream is not open" }))
            }
            const lines = state.records.get(stream) ?? []
            state.records.set(stream, lines)
            for (const record of records) lines.push(record.line)
            state.writes++
            return Effect.void
          })
        ),
      close: (stream) =>
        Effect.sync(() => {
          state.open.delete(stream)
        }),
      streams: gate(
        state,
        "streams",
        Effect.sync(() => [...state.records.keys()].sort())
      ),
      scan: (stream, from) =>
        Stream.unwrap(
          gate(
            state,
            "scan",
            Effect.sync(() => {
              const lines = state.records.get(stream) ?? []
              return Stream.fromIterable(
                lines
                  .slice(Math.max(0, from - 1))
                  .map((line, i) => ({ position: Math.max(1, from) + i, line }))
              )
            })
          )
        ),
      bytes: (stream) =>
        Stream.unwrap(
          gate(
            state,
            "bytes",
            Effect.sync(() => {
              const lines = state.records.get(stream) ?? []
              return lines.length === 0
                ? Stream.empty
                : Stream.make(new Uint8Array(Buffer.from(lines.join("\n") + "\n", "utf8")))
            })
          )
        ),
      writeCheckpoint: (stream, _seq, line) =>
        gate(
          state,
          "writeCheckpoint",
          Effect.sync(() => {
            const lines = state.checkpoints.get(stream) ?? []
            state.checkpoints.set(stream, lines)
            lines.push(line)
          })
        ),
      checkpoints: (stream) =>
        gate(
          state,
          "checkpoints",
          Effect.sync(() => [...(state.checkpoints.get(stream) ?? [])])
        )
    })
    const control = MemorySink.of({
      setMode: (mode) =>
        Effect.sync(() => {
          state.mode = mode
        }),
      lines: (stream) => Effect.sync(() => [...(state.records.get(stream) ?? [])]),
      setLines: (stream, lines) =>
        Effect.sync(() => {
          state.records.set(stream, [...lines])
        }),
      setCheckpoints: (stream, lines) =>
        Effect.sync(() => {
          state.checkpoints.set(stream, [...lines])
        }),
      writes: Effect.sync(() => state.writes)
    })
    return Context.make(AuditSink, sink).pipe(Context.add(MemorySink, control))
  })
)
