/**
 * Where the jobs keep their restart state: cursors, "already done" markers, give-up markers.
 * Every write is a conditional single-item write (absent, or at the version read), so two
 * workers racing on the same marker have one winner and a killed worker resumes from the last
 * marker it wrote.
 *
 * Adapters: {@link layerCoordination} stores items in the coordination table through the
 * coordination context's public `CoordinationStore` port (`pk = worker#<job>`, `sk = <key>`,
 * no index keys, so no repository ever reads them), each with an HMAC under the system key of
 * purpose `worker-progress`; {@link layerMemory} for tests.
 *
 * @since 0.1.0
 */
import { CoordinationStore } from "@aap/agent-coordination"
import { SystemKeys } from "@aap/key-custody"
import { Context, Data, Effect, Layer, Option } from "effect"
import { canonical } from "./internal/json.js"

export type Value = CoordinationStore.JsonObject

export interface Entry {
  readonly value: Value
  readonly version: number
}

/** The store failed, or a stored marker does not carry a valid MAC. */
export class ProgressError extends Data.TaggedError("ProgressError")<{
  readonly reason: "unavailable" | "tampered"
  readonly message: string
}> {}

export interface ProgressShape {
  readonly get: (job: string, key: string) => Effect.Effect<Option.Option<Entry>, ProgressError>
  /**
   * Writes `value` if the stored version is still `expected` (`none`: the marker must be
   * absent). `false` when another writer got there first.
   */
  readonly put: (
    job: string,
    key: string,
    value: Value,
    expected: Option.Option<number>
  ) => Effect.Effect<boolean, ProgressError>
}

export class Progress extends Context.Tag("@aap/worker/Progress")<Progress, ProgressShape>() {}

/** Writes the marker once; `true` for the one caller that created it. */
export const claim = (
  job: string,
  key: string,
  value: Value
): Effect.Effect<boolean, ProgressError, Progress> =>
  Effect.flatMap(Progress, (p) => p.put(job, key, value, Option.none()))

/** Replaces the marker whatever its version (read, then conditional write; retried on a race). */
export const set = (job: string, key: string, value: Value): Effect.Effect<void, ProgressError, Progress> =>
  Effect.gen(function* () {
    const p = yield* Progress
    for (let i = 0; i < 5; i++) {
      const current = yield* p.get(job, key)
      if (
        yield* p.put(
          job,
          key,
          value,
          Option.map(current, (e) => e.version)
        )
      )
        return
    }
    return yield* new ProgressError({
      reason: "unavailable",
      message: `progress ${job}/${key} kept changing`
    })
  })

const PURPOSE = "worker-progress"

export const makeCoordination: Effect.Effect<
  ProgressShape,
  never,
  CoordinationStore.CoordinationStore | SystemKeys.SystemKeys
> = Effect.gen(function* () {
  const store = yield* CoordinationStore.CoordinationStore
  const keys = yield* SystemKeys.SystemKeys
  const pk = (job: string) => `worker#${job}`
  const mac = (job: string, key: string, version: number, value: Value) =>
    keys.hmac(PURPOSE, canonical({ job, key, version, value }))
  const unavailable = (e: { readonly message: string }) =>
    new ProgressError({ reason: "unavailable", message: `progress store unavailable: ${e.message}` })
  return Progress.of({
    get: (job, key) =>
      Effect.gen(function* () {
        const found = yield* store.get(pk(job), key).pipe(Effect.mapError(unavailable))
        if (Option.isNone(found)) return Option.none()
        const item = found.value
        const expected = yield* mac(job, key, item.version, item.data)
        if (expected !== item.mac) {
          return yield* new ProgressError({
            reason: "tampered",
            message: `progress marker ${job}/${key} failed its integrity check`
          })
        }
        return Option.some({ value: item.data, version: item.version })
      }),
    put: (job, key, value, expected) =>
      Effect.gen(function* () {
        const version = Option.match(expected, { onNone: () => 1, onSome: (v) => v + 1 })
        const item: CoordinationStore.Item = {
          pk: pk(job),
          sk: key,
          version,
          data: value,
          mac: yield* mac(job, key, version, value)
        }
        return yield* store
          .put(
            item,
            Option.match(expected, {
              onNone: () => CoordinationStore.absent,
              onSome: CoordinationStore.atVersion
            })
          )
          .pipe(
            Effect.as(true),
            Effect.catchTag("ConditionFailed", () => Effect.succeed(false)),
            Effect.mapError(unavailable)
          )
      })
  })
})

export const layerCoordination: Layer.Layer<
  Progress,
  never,
  CoordinationStore.CoordinationStore | SystemKeys.SystemKeys
> = Layer.effect(Progress, makeCoordination)

/** In memory, one map per layer build. */
export const layerMemory: Layer.Layer<Progress> = Layer.sync(Progress, () => {
  const items = new Map<string, Entry>()
  return Progress.of({
    get: (job, key) => Effect.sync(() => Option.fromNullable(items.get(`${job}\u0000${key}`))),
    put: (job, key, value, expected) =>
      Effect.sync(() => {
        const k = `${job}\u0000${key}`
        const current = items.get(k)
        const ok = Option.match(expected, {
          onNone: () => current === undefined,
          onSome: (v) => current?.version === v
        })
        if (ok) items.set(k, { value, version: (current?.version ?? 0) + 1 })
        return ok
      })
  })
})
