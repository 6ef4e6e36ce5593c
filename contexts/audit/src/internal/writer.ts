import * as Os from "node:os"
import { Clock, Duration, Effect, Fiber, Redacted, type Scope } from "effect"
import { AuditUnavailable } from "../AuditError.js"
import type { AuditEvent, AuditInput, Checkpoint, Hmacs } from "../AuditEvent.js"
import type { AuditKeysShape } from "../AuditKeys.js"
import type { AuditSinkShape } from "../AuditSink.js"
import * as CheckpointCodec from "./checkpoint.js"
import { GENESIS, sealInPlace, type Unsealed } from "./record.js"
import { makeUlidFactory } from "./ulid.js"
import { validInput } from "./validate.js"

export interface WriterOptions {
  readonly instanceId?: string | undefined
  readonly appendTimeout?: Duration.DurationInput | undefined
  readonly maxBatch?: number | undefined
  readonly maxPending?: number | undefined
  readonly checkpointInterval?: Duration.DurationInput | undefined
}

export interface Writer {
  readonly stream: Effect.Effect<string>
  readonly append: (input: AuditInput) => Effect.Effect<AuditEvent, AuditUnavailable>
  readonly checkpoint: Effect.Effect<Checkpoint, AuditUnavailable>
}

type Draft = {
  -readonly [K in keyof Omit<Unsealed, "id" | "stream" | "seq" | "ts" | "prevHash">]: Unsealed[K]
}

interface Item {
  readonly event: Draft
  /** Answers the caller; set when the caller starts waiting, cleared once answered. */
  resume: ((effect: Effect.Effect<AuditEvent, AuditUnavailable>) => void) | undefined
  answered: boolean
  /** 0 queued, 1 taken by a batch, 2 abandoned by its caller */
  state: 0 | 1 | 2
  /** Clock millis after which the append fails */
  readonly deadline: number
}

interface Head {
  stream: string
  seq: number
  hash: string
  opened: boolean
}

export const sanitizeInstanceId = (raw: string): string => {
  const cleaned = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
  return cleaned.length === 0 ? "aap" : cleaned
}

const unavailable = (message: string) => new AuditUnavailable({ message })

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

export const makeWriter = (
  sink: AuditSinkShape,
  keys: AuditKeysShape,
  options: WriterOptions
): Effect.Effect<Writer, AuditUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const instanceId = sanitizeInstanceId(options.instanceId ?? Os.hostname())
    const appendTimeout = Duration.decode(options.appendTimeout ?? "5 seconds")
    const maxBatch = Math.max(1, Math.min(options.maxBatch ?? 1024, sink.maxBatch))
    const maxPending = options.maxPending ?? 65_536
    const nextId = makeUlidFactory()
    let lastMillis = 0
    const now = Effect.map(Clock.currentTimeMillis, (millis) => {
      lastMillis = Math.max(lastMillis, millis)
      return lastMillis
    })

    const head: Head = { stream: "", seq: 0, hash: GENESIS, opened: false }
    const openStream = Effect.gen(function* () {
      const stream = `${instanceId}-${nextId(yield* now)}`
      yield* sink.open(stream)
      head.stream = stream
      head.seq = 0
      head.hash = GENESIS
      head.opened = true
    })
    yield* openStream.pipe(
      Effect.mapError((e) => unavailable(`audit sink ${sink.kind} cannot open a stream: ${e.message}`))
    )

    // the queue: a plain array and a wake-up for the flusher (cheaper than Effect's Queue here)
    let queue: Array<Item> = []
    let wake: (() => void) | undefined
    const offer = (item: Item) => {
      queue.push(item)
      if (wake !== undefined) {
        const w = wake
        wake = undefined
        w()
      }
    }
    const takeAll = Effect.async<Array<Item>>((resume) => {
      const drain = () => {
        const taken = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch)
        queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch)
        resume(Effect.succeed(taken))
      }
      if (queue.length > 0) drain()
      else wake = drain
      return Effect.sync(() => {
        wake = undefined
      })
    })
    const answer = (item: Item, effect: Effect.Effect<AuditEvent, AuditUnavailable>) => {
      outstanding.delete(item)
      if (item.answered) return
      item.answered = true
      const resume = item.resume
      item.resume = undefined
      resume?.(effect)
    }
    let pending = 0
    let inflight = false
    let closing = false

    const outstanding = new Set<Item>()
    const clock = yield* Effect.clock
    const timeoutMillis = Duration.toMillis(appendTimeout)

    const failItems = (items: ReadonlyArray<Item>, error: AuditUnavailable) =>
      Effect.sync(() => {
        const failure = Effect.fail(error)
        for (const item of items) answer(item, failure)
      })

    // Fails appends whose deadline passed: one timer for all appends instead of one each.
    const reap = Effect.sync(() => {
      const now = clock.unsafeCurrentTimeMillis()
      for (const item of outstanding) {
        if (item.deadline <= now) {
          if (item.state === 0) item.state = 2
          answer(item, Effect.fail(unavailable("audit append timed out")))
        }
      }
    })
    const tick = Duration.millis(Math.max(5, Math.min(100, timeoutMillis / 10)))

    const flushOnce = Effect.gen(function* () {
      const taken = yield* takeAll
      const live: Array<Item> = []
      for (const item of taken) {
        pending--
        if (item.state === 0) {
          item.state = 1
          live.push(item)
        }
      }
      if (live.length === 0) return
      inflight = true
      if (!head.opened) {
        const reopened = yield* Effect.either(
          openStream.pipe(Effect.timeoutFail({ duration: appendTimeout, onTimeout: () => "timed out" }))
        )
        if (reopened._tag === "Left") {
          inflight = false
          return yield* failItems(live, unavailable(`audit sink ${sink.kind} is unavailable`))
        }
      }
      const millis = yield* now
      const ts = new Date(millis).toISOString()
      const stream = head.stream
      let seq = head.seq
      let prevHash = head.hash
      const events: Array<AuditEvent> = []
      const records: Array<{ seq: number; line: string }> = []
      for (const item of live) {
        seq++
        const sealed = sealInPlace(
          Object.assign(item.event, { id: nextId(millis), stream, seq, ts, prevHash })
        )
        events.push(sealed.event)
        records.push({ seq, line: sealed.line })
        prevHash = sealed.event.hash
      }
      const written = yield* Effect.either(
        sink
          .write(stream, records)
          .pipe(Effect.timeoutFail({ duration: appendTimeout, onTimeout: () => "timed out" as const }))
      )
      inflight = false
      if (written._tag === "Right") {
        head.seq = seq
        head.hash = prevHash
        for (let i = 0; i < live.length; i++) {
          answer(live[i]!, Effect.succeed(events[i]!))
        }
        return
      }
      // The stream may now hold a prefix of this batch: it is never written again. The next
      // batch opens a fresh stream, so every stream stays a gap-free chain.
      head.opened = false
      const why = written.left === "timed out" ? "timed out" : "failed"
      yield* Effect.logWarning(`audit sink ${sink.kind} write ${why}; abandoning stream ${stream}`)
      yield* Effect.forkDaemon(sink.close(stream))
      yield* failItems(live, unavailable(`audit sink ${sink.kind} write ${why}`))
    })

    const flusher = yield* Effect.forkDaemon(Effect.forever(flushOnce))
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(tick), reap)))

    const sealCheckpoint = (final: boolean) =>
      Effect.gen(function* () {
        const ts = new Date(yield* now).toISOString()
        const checkpoint = yield* CheckpointCodec.sign(keys, {
          stream: head.stream,
          seq: head.seq,
          hash: head.hash,
          ts,
          final
        })
        yield* sink.writeCheckpoint(head.stream, head.seq, CheckpointCodec.toLine(checkpoint))
        return checkpoint
      }).pipe(
        Effect.mapError(() => unavailable("audit checkpoint could not be written")),
        Effect.timeoutFail({
          duration: appendTimeout,
          onTimeout: () => unavailable("audit checkpoint timed out")
        })
      )

    let lastSealedSeq = -1
    const checkpoint = Effect.suspend(() =>
      head.opened ? sealCheckpoint(false) : Effect.fail(unavailable("audit stream is not open"))
    ).pipe(
      Effect.tap((c) =>
        Effect.sync(() => {
          lastSealedSeq = c.seq
        })
      )
    )

    if (options.checkpointInterval !== undefined) {
      const interval = Duration.decode(options.checkpointInterval)
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.sleep(interval).pipe(
            Effect.zipRight(
              Effect.suspend(() =>
                head.opened && head.seq !== lastSealedSeq && !closing
                  ? Effect.ignore(checkpoint)
                  : Effect.void
              )
            )
          )
        )
      )
    }

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        closing = true
        // let queued appends finish (bounded by the append timeout), then seal the stream
        const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(appendTimeout)
        while ((pending > 0 || inflight) && (yield* Clock.currentTimeMillis) < deadline) {
          yield* Effect.sleep("2 millis")
        }
        const clean = pending === 0 && !inflight
        yield* Fiber.interrupt(flusher)
        const leftovers = queue
        queue = []
        yield* failItems([...leftovers], unavailable("audit log is closed"))
        if (clean && head.opened) yield* Effect.ignore(sealCheckpoint(true))
        if (head.opened) yield* sink.close(head.stream)
      })
    )

    const enqueue = (input: AuditInput, hmac: Hmacs | undefined) =>
      Effect.suspend(() => {
        const event: Draft = {
          actor: { type: input.actor.type, id: input.actor.id },
          action: input.action,
          outcome: input.outcome,
          details: input.details ?? {}
        }
        if (input.capability !== undefined) event.capability = input.capability
        if (input.session !== undefined) event.session = input.session
        if (input.wallet !== undefined) event.wallet = input.wallet
        if (input.tier !== undefined) event.tier = input.tier
        if (input.reason !== undefined) event.reason = input.reason
        if (input.traceId !== undefined) event.traceId = input.traceId
        if (hmac !== undefined) event.hmac = hmac
        const item: Item = {
          event,
          resume: undefined,
          answered: false,
          state: 0,
          deadline: clock.unsafeCurrentTimeMillis() + timeoutMillis
        }
        return Effect.async<AuditEvent, AuditUnavailable>((resume) => {
          item.resume = resume
          outstanding.add(item)
          pending++
          offer(item)
          return Effect.sync(() => {
            // the caller went away: drop the event if no batch took it yet
            if (item.state === 0) item.state = 2
            item.answered = true
            item.resume = undefined
            outstanding.delete(item)
          })
        })
      })

    const append = (input: AuditInput): Effect.Effect<AuditEvent, AuditUnavailable> =>
      Effect.suspend(() => {
        if (closing) return Effect.fail(unavailable("audit log is closed"))
        if (!validInput(input)) {
          return Effect.dieMessage(
            "invalid audit input: details must be finite scalars, action a dotted lowercase name"
          )
        }
        if (outstanding.size >= maxPending) return Effect.fail(unavailable("audit backlog is full"))
        const sensitive = input.sensitive
        const names = sensitive === undefined ? [] : Object.keys(sensitive)
        if (names.length === 0) return enqueue(input, input.hmac)
        return Effect.forEach(names, (name) =>
          Effect.map(
            keys.hmac(new TextEncoder().encode(Redacted.value(sensitive![name]!))),
            (mac) => [name, hex(mac)] as const
          )
        ).pipe(
          Effect.mapError(() => unavailable("audit key is unavailable")),
          Effect.timeoutFail({
            duration: appendTimeout,
            onTimeout: () => unavailable("audit key timed out")
          }),
          Effect.flatMap((pairs) => enqueue(input, { ...input.hmac, ...Object.fromEntries(pairs) }))
        )
      })

    return {
      stream: Effect.sync(() => head.stream),
      append,
      checkpoint
    }
  })
