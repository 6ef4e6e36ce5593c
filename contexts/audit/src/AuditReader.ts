/**
 * The audit log's read side: list streams, tail a stream, query across streams, and verify
 * every stream's hash chain and checkpoints (DESIGN §8). Reads any stream in the sink,
 * whoever wrote it.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Stream } from "effect"
import { AuditUnavailable } from "./AuditError.js"
import {
  type AuditEvent,
  type Break,
  type Checkpoint,
  GENESIS_HASH,
  type StreamReport,
  type VerifyReport
} from "./AuditEvent.js"
import * as AuditKeys from "./AuditKeys.js"
import * as AuditSink from "./AuditSink.js"
import * as CheckpointCodec from "./internal/checkpoint.js"
import { parseStored, readLine } from "./internal/record.js"
import { ulidTime } from "./internal/ulid.js"
import { NextRecord } from "./internal/verifyLine.js"

/**
 * Filters for `query`. All given filters must match. `from` is inclusive, `to` exclusive
 * (ISO-8601 timestamps). `hmac` matches an event any of whose `hmac` values equals it (see
 * `AuditHmac.compute`). `after` (a seq) applies only with `stream`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Query {
  readonly stream?: string | undefined
  readonly after?: number | undefined
  readonly from?: string | undefined
  readonly to?: string | undefined
  readonly session?: string | undefined
  readonly actor?: string | undefined
  readonly actorType?: AuditEvent["actor"]["type"] | undefined
  readonly action?: string | undefined
  readonly wallet?: string | undefined
  readonly hmac?: string | undefined
  readonly limit?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface VerifyOptions {
  /** Checkpoints kept elsewhere (shipped to an Object Lock bucket); checked like stored ones. */
  readonly checkpoints?: ReadonlyArray<Checkpoint> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AuditReaderShape {
  /** Every stream id, sorted. */
  readonly streams: Effect.Effect<ReadonlyArray<string>, AuditUnavailable>
  /** Events of one stream with seq greater than `after` (default 0), at most `limit` (default 100). */
  readonly tail: (
    stream: string,
    options?: { readonly after?: number | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<AuditEvent>, AuditUnavailable>
  /** Events matching every filter, ordered by (ts, stream, seq), at most `limit` (default 100). */
  readonly query: (query: Query) => Effect.Effect<ReadonlyArray<AuditEvent>, AuditUnavailable>
  /**
   * Calls `f` with every event, of every stream, whose action starts with one of `actionPrefixes`, in
   * each stream's order (streams one after the other, not merged by time); the number of
   * events passed. Other lines are not decoded. For start-up scans over the whole log.
   */
  readonly forEachAction: (
    actionPrefixes: ReadonlyArray<string>,
    f: (event: AuditEvent) => void
  ) => Effect.Effect<number, AuditUnavailable>
  /** Walk every stream; report the first broken record. */
  readonly verify: (options?: VerifyOptions) => Effect.Effect<VerifyReport, AuditUnavailable>
  /** Walk one stream. */
  readonly verifyStream: (
    stream: string,
    options?: VerifyOptions
  ) => Effect.Effect<
    { readonly report: StreamReport; readonly firstBreak?: Break | undefined },
    AuditUnavailable
  >
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AuditReader extends Context.Tag("@aap/audit/AuditReader")<AuditReader, AuditReaderShape>() {}

/**
 * Most events one `tail` or `query` returns.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_LIMIT = 10_000

const sinkUnavailable = (e: AuditSink.AuditSinkError) =>
  new AuditUnavailable({ message: `audit sink unavailable (${e.operation})` })

const keysUnavailable = () => new AuditUnavailable({ message: "audit checkpoint keys are unavailable" })

const clampLimit = (limit: number | undefined) => Math.max(1, Math.min(MAX_LIMIT, Math.floor(limit ?? 100)))

const matches = (event: AuditEvent, q: Query): boolean =>
  (q.from === undefined || event.ts >= q.from) &&
  (q.to === undefined || event.ts < q.to) &&
  (q.session === undefined || event.session === q.session) &&
  (q.actor === undefined || event.actor.id === q.actor) &&
  (q.actorType === undefined || event.actor.type === q.actorType) &&
  (q.action === undefined || event.action === q.action) &&
  (q.wallet === undefined || event.wallet === q.wallet) &&
  (q.hmac === undefined || (event.hmac !== undefined && Object.values(event.hmac).includes(q.hmac)))

const order = (a: AuditEvent, b: AuditEvent) =>
  a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : a.seq - b.seq

/**
 * The reader over any `AuditSink` (checkpoint keys from `AuditKeys`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (sink: AuditSink.AuditSinkShape, keys: AuditKeys.AuditKeysShape): AuditReaderShape => {
  const streams = Effect.mapError(sink.streams, sinkUnavailable)

  const tail: AuditReaderShape["tail"] = (stream, options) => {
    const limit = clampLimit(options?.limit)
    // decoded line by line, stopping mid-chunk at `limit` (see `query`)
    return sink.scan(stream, Math.max(0, Math.floor(options?.after ?? 0)) + 1).pipe(
      Stream.runFoldWhile(
        [] as Array<AuditEvent>,
        (events) => events.length < limit,
        (events, { line }) => {
          const event = readLine(line)
          if (event !== undefined) events.push(event)
          return events
        }
      ),
      Effect.mapError(sinkUnavailable)
    )
  }

  const query: AuditReaderShape["query"] = (q) =>
    Effect.gen(function* () {
      const limit = clampLimit(q.limit)
      const all = q.stream === undefined ? yield* streams : [q.stream]
      // a stream id carries its writer's start time: skip streams started at or after `to`
      const candidates = all.filter((s) => {
        if (q.to === undefined) return true
        const started = ulidTime(s.slice(-26))
        return Number.isNaN(started) || new Date(started).toISOString() < q.to
      })
      const found: Array<AuditEvent> = []
      for (const stream of candidates) {
        const from = q.stream !== undefined ? Math.max(0, Math.floor(q.after ?? 0)) + 1 : 1
        // Within a stream `ts` never decreases (one writer per stream keeps it monotonic,
        // internal/writer.ts) and seq increases, so a stream's records come in (ts, stream, seq)
        // order: only its first `limit` matches can be among the first `limit` overall, and
        // nothing after its first record at or past `to` matches. The scan stops there instead
        // of reading the whole stream (a query used to cost the whole log).
        // A sink may hand over a whole segment as one chunk: lines are decoded one by one and
        // the fold stops mid-chunk (chunk-wide stream operators would decode all of it first).
        let done = false
        const taken = yield* sink.scan(stream, from).pipe(
          Stream.runFoldWhile(
            [] as Array<AuditEvent>,
            () => !done,
            (events, { line }) => {
              const event = readLine(line)
              if (event === undefined) return events
              if (q.to !== undefined && event.ts >= q.to) done = true
              else if (matches(event, q)) {
                events.push(event)
                if (events.length >= limit) done = true
              }
              return events
            }
          ),
          Effect.mapError(sinkUnavailable)
        )
        for (const event of taken) found.push(event)
      }
      return found.sort(order).slice(0, limit)
    })

  const verifyStream: AuditReaderShape["verifyStream"] = (stream, options) =>
    Effect.gen(function* () {
      const publicKeys = yield* Effect.mapError(keys.publicKeys, keysUnavailable)
      const stored = yield* Effect.mapError(sink.checkpoints(stream), sinkUnavailable)
      let firstBreak: Break | undefined
      const note = (seq: number, reason: Break["reason"], message: string) => {
        if (firstBreak === undefined || seq < firstBreak.seq) firstBreak = { stream, seq, reason, message }
      }
      const valid: Array<Checkpoint> = []
      const consider = (checked: CheckpointCodec.CheckedCheckpoint) => {
        if (checked._tag === "Invalid") note(checked.seq, "bad-checkpoint", checked.message)
        else if (checked.checkpoint.stream !== stream)
          note(checked.checkpoint.seq, "bad-checkpoint", "checkpoint names another stream")
        else valid.push(checked.checkpoint)
      }
      for (const line of stored) consider(CheckpointCodec.check(line, publicKeys))
      for (const c of options?.checkpoints ?? []) {
        if (c.stream === stream) consider(CheckpointCodec.checkDecoded(c, publicKeys))
      }
      const expected = new Map<number, string>()
      for (const c of valid) {
        const other = expected.get(c.seq)
        if (other !== undefined && other !== c.hash)
          note(c.seq, "checkpoint-mismatch", "two checkpoints disagree")
        expected.set(c.seq, c.hash)
      }
      if (expected.has(0) && expected.get(0) !== GENESIS_HASH) {
        note(0, "checkpoint-mismatch", "checkpoint at seq 0 is not the genesis hash")
      }

      // checkpointed seqs in order: the fast path stops at each to compare the hash
      const signedSeqs = [...expected.keys()].filter((seq) => seq > 0).sort((a, b) => a - b)
      let signedAt = 0

      let prevSeq = 0
      let records = 0
      let broken = false
      // a record with a later seq than expected: a gap, unless the next record is the
      // expected one (then the two were swapped)
      let ahead: number | undefined
      // the chain's head (the last good record's hash) and the fast path (ADR 0034)
      const next = new NextRecord(stream, GENESIS_HASH)
      yield* Stream.runForEach(sink.bytes(stream), (chunk) =>
        Effect.sync(() => {
          if (broken) return
          const buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
          next.chunk(buffer)
          try {
            let start = 0
            while (start < buffer.length) {
              if (ahead === undefined) {
                // the fast path: canonical lines of the expected records (hash, prevHash, seq
                // and stream hold), up to the next checkpointed seq
                while (signedAt < signedSeqs.length && signedSeqs[signedAt]! <= prevSeq) signedAt++
                const until = signedAt < signedSeqs.length ? signedSeqs[signedAt]! : Number.MAX_SAFE_INTEGER
                const accepted = next.run(start, prevSeq + 1, until)
                if (accepted > 0) {
                  prevSeq += accepted
                  records += accepted
                  start = next.position
                  if (prevSeq === until && expected.get(until) !== next.prevHash()) {
                    note(until, "checkpoint-mismatch", "record differs from the signed checkpoint")
                    broken = true
                    return
                  }
                  continue
                }
              }
              const seq = prevSeq + 1
              // the full path: decode the line, then accept it or classify the break
              let end = buffer.indexOf(10, start)
              if (end < 0) end = buffer.length
              const parsed = parseStored(buffer.subarray(start, end))
              start = end + 1
              if (ahead !== undefined) {
                if (parsed._tag === "Ok" && parsed.event.seq === seq)
                  note(seq, "out-of-order", `seq ${ahead} comes before seq ${seq}`)
                else note(seq, "gap", `expected seq ${seq}, found ${ahead}`)
                broken = true
                return
              }
              if (parsed._tag === "Bad") {
                note(seq, parsed.reason, parsed.message)
                broken = true
                return
              }
              const link = parsed.event
              if (link.stream !== stream) {
                note(seq, "wrong-stream", "record names another stream")
              } else if (link.seq > seq) {
                ahead = link.seq
                continue
              } else if (link.seq < seq) {
                note(seq, "out-of-order", `expected seq ${seq}, found ${link.seq}`)
              } else if (link.prevHash !== next.prevHash()) {
                note(seq, "bad-prev-hash", "prevHash is not the previous record's hash")
              } else if (expected.has(seq) && expected.get(seq) !== link.hash) {
                note(seq, "checkpoint-mismatch", "record differs from the signed checkpoint")
              } else {
                // a valid record the fast path does not read (e.g. a \u escape): same checks
                prevSeq = seq
                next.setPrevHash(link.hash)
                records++
                continue
              }
              broken = true
              return
            }
          } finally {
            // the sink may reuse the buffer for the next chunk
            next.endChunk()
          }
        })
      ).pipe(Effect.mapError(sinkUnavailable))
      if (ahead !== undefined && !broken) {
        note(prevSeq + 1, "gap", `expected seq ${prevSeq + 1}, found ${ahead}`)
        broken = true
      }
      const prevHash = next.prevHash()

      let checkpointSeq: number | undefined
      let final: Checkpoint | undefined
      for (const c of valid) {
        if (checkpointSeq === undefined || c.seq > checkpointSeq) checkpointSeq = c.seq
        if (c.final && (final === undefined || c.seq > final.seq)) final = c
      }
      if (!broken && checkpointSeq !== undefined && checkpointSeq > prevSeq) {
        note(
          prevSeq + 1,
          "truncated",
          `a checkpoint covers seq ${checkpointSeq}; the stream ends at ${prevSeq}`
        )
      }
      if (!broken && final !== undefined && prevSeq > final.seq) {
        note(
          final.seq + 1,
          "after-final-checkpoint",
          `records follow the final checkpoint at seq ${final.seq}`
        )
      }
      const report: StreamReport = {
        stream,
        records,
        lastSeq: prevSeq,
        lastHash: prevHash,
        ...(checkpointSeq === undefined ? {} : { checkpointSeq }),
        sealed: final !== undefined && final.seq === prevSeq && firstBreak === undefined,
        ok: firstBreak === undefined
      }
      return { report, firstBreak }
    })

  const verify: AuditReaderShape["verify"] = (options) =>
    Effect.gen(function* () {
      const stored = yield* streams
      const shipped = (options?.checkpoints ?? []).map((c) => c.stream)
      const all = [...new Set([...stored, ...shipped])].sort()
      const reports: Array<StreamReport> = []
      let firstBreak: Break | undefined
      for (const stream of all) {
        const result = yield* verifyStream(stream, options)
        reports.push(result.report)
        if (firstBreak === undefined && result.firstBreak !== undefined) firstBreak = result.firstBreak
      }
      return {
        ok: firstBreak === undefined,
        streams: reports,
        ...(firstBreak === undefined ? {} : { firstBreak })
      }
    })

  const forEachAction: AuditReaderShape["forEachAction"] = (actionPrefixes, f) =>
    Effect.gen(function* () {
      // canonical lines hold `"action":"<action>"` once, right after the hash (ADR 0031): a
      // line without one of the prefixes there is skipped without being decoded
      const markers = actionPrefixes.map((p) => `"action":${JSON.stringify(p).slice(0, -1)}`)
      let passed = 0
      for (const stream of yield* streams) {
        yield* sink.scan(stream, 1).pipe(
          Stream.runForEach(({ line }) =>
            Effect.sync(() => {
              if (!markers.some((m) => line.includes(m))) return
              const event = readLine(line)
              if (event === undefined || !actionPrefixes.some((p) => event.action.startsWith(p))) return
              passed++
              f(event)
            })
          ),
          Effect.mapError(sinkUnavailable)
        )
      }
      return passed
    })

  return AuditReader.of({ streams, tail, query, forEachAction, verify, verifyStream })
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<AuditReader, never, AuditSink.AuditSink | AuditKeys.AuditKeys> = Layer.effect(
  AuditReader,
  Effect.gen(function* () {
    return make(yield* AuditSink.AuditSink, yield* AuditKeys.AuditKeys)
  })
)
