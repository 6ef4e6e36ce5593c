/**
 * Sessions in the coordination store (ADR 0040). Every item carries an integrity MAC
 * (ADR 0042) that is checked on every read; an item that fails it is `Tampered`, never
 * trusted.
 *
 * Keys:
 * - item: `PK=session#<id>`, `SK=session`
 * - `byStatus` (GSI1): `session-status#<status>` / `<deadline ISO>#<id>` — the deadline is
 *   `expiresAt` while live and the end time once terminal, so "active" and "pending" lists are
 *   a key-condition range above *now*: lazily expired items are never read.
 * - `byOwner` (GSI2): `agent#<agent>` / `session#<status>#<deadline ISO>#<id>`
 *
 * @since 0.1.0
 */
import type { SystemKeys } from "@aap/key-custody"
import { Context, DateTime, Effect, Layer, Option, Schema } from "effect"
import * as Store from "./CoordinationStore.js"
import { Conflict, type InvalidCursor, Tampered, type Unavailable } from "./Errors.js"
import * as HighWater from "./internal/highWater.js"
import * as Integrity from "./internal/integrity.js"
import { Session, type Status } from "./Session.js"

const KIND = "session"

export interface ListOptions {
  readonly limit: number
  readonly cursor?: string | undefined
}

export interface SessionPage {
  readonly sessions: ReadonlyArray<Session>
  readonly cursor: Option.Option<string>
  /** Items the store read to answer. */
  readonly read: number
}

export interface SessionRepositoryShape {
  /** Stores a new session; fails with Conflict if the id exists. */
  readonly create: (session: Session) => Effect.Effect<void, Conflict | Unavailable>
  readonly get: (id: string) => Effect.Effect<Option.Option<Session>, Tampered | Unavailable>
  /**
   * Replaces the session if its stored version is still `expectedVersion`; a concurrent
   * writer that got there first makes this fail with `Conflict` (`concurrent-update`).
   */
  readonly save: (session: Session, expectedVersion: number) => Effect.Effect<void, Conflict | Unavailable>
  /**
   * Sessions whose stored status is `status`. For the live statuses only those whose
   * deadline is after `now` (a key condition, so expired ones are not read at all).
   */
  readonly listByStatus: (
    status: Status,
    now: DateTime.Utc,
    options: ListOptions
  ) => Effect.Effect<SessionPage, Tampered | InvalidCursor | Unavailable>
  /** One agent's sessions, optionally of one stored status (live ones only above `now`). */
  readonly listByAgent: (
    agent: string,
    status: Status | undefined,
    now: DateTime.Utc,
    options: ListOptions
  ) => Effect.Effect<SessionPage, Tampered | InvalidCursor | Unavailable>
  /** Live sessions whose deadline is at or before `now` (for expiry sweeps). */
  readonly listDue: (
    now: DateTime.Utc,
    limit: number
  ) => Effect.Effect<ReadonlyArray<Session>, Tampered | Unavailable>
  /** Counts an agent's live, not yet due sessions, stopping at `atMost`. */
  readonly countLive: (
    agent: string,
    now: DateTime.Utc,
    atMost: number
  ) => Effect.Effect<number, Tampered | Unavailable>
  /**
   * Takes one slot of a fixed window counter (`window` names the window) unless `limit` slots
   * are taken; true when taken.
   */
  readonly takeSlot: (
    agent: string,
    window: string,
    limit: number,
    expireAt: number
  ) => Effect.Effect<boolean, Unavailable>
  /**
   * Raises the rollback mark (ADR 0044) of session `id` to `version` until `until` (epoch ms),
   * as if this process had read that version: a consistent read of an older copy is then
   * `Tampered`. For marks known from elsewhere (the audit log, at start).
   */
  readonly remember: (id: string, version: number, until: number) => void
}

export class SessionRepository extends Context.Tag("@aap/agent-coordination/SessionRepository")<
  SessionRepository,
  SessionRepositoryShape
>() {}

const iso = (d: DateTime.Utc): string => DateTime.formatIso(d)
const HIGH = "~"

const deadline = (s: Session): string =>
  s.status === "pending_approval" || s.status === "active"
    ? iso(s.expiresAt)
    : iso(s.ended?.at ?? s.updatedAt)

export const pk = (id: string): string => `session#${id}`
export const statusPartition = (status: Status): string => `session-status#${status}`
export const agentPartition = (agent: string): string => `agent#${agent}`

const encode = Schema.encodeSync(Session)
const decode = Schema.decodeUnknownOption(Session)

/** Keeps sessions around for 30 days after their deadline before DynamoDB TTL removes them. */
const RETENTION_SECONDS = 30 * 24 * 3600

/** The store item of a session, before its MAC (exported for seeding tools and tests). */
export const toItem = (s: Session): Omit<Store.Item, "mac"> => ({
  pk: pk(s.id),
  sk: KIND,
  version: s.version,
  data: encode(s),
  byStatus: { pk: statusPartition(s.status), sk: `${deadline(s)}#${s.id}` },
  byOwner: { pk: agentPartition(s.agent), sk: `session#${s.status}#${deadline(s)}#${s.id}` },
  expireAt: Math.floor(DateTime.toEpochMillis(s.expiresAt) / 1000) + RETENTION_SECONDS
})

/** The signed store item of a session. */
export const signItem = (s: Session): Effect.Effect<Store.Item, never, SystemKeys.SystemKeys> =>
  Integrity.sign(KIND, toItem(s))

const tampered = (item: Store.Item) =>
  new Tampered({ message: `stored item ${item.pk} failed its integrity check`, kind: "session" })

export const make: Effect.Effect<
  SessionRepositoryShape,
  never,
  Store.CoordinationStore | SystemKeys.SystemKeys
> = Effect.gen(function* () {
  const store = yield* Store.CoordinationStore
  const context = yield* Effect.context<SystemKeys.SystemKeys>()

  const sign = (s: Session) => Integrity.sign(KIND, toItem(s)).pipe(Effect.provide(context))
  // the newest version of each session this process wrote or read: an older, validly MACed
  // copy put back in the table is a rollback (ADR 0044)
  const seen = HighWater.make({ maxEntries: 200_000 })
  const note = (s: Session) => seen.note(pk(s.id), s.version, DateTime.toEpochMillis(s.expiresAt))

  // `consistent`: the item came from a strongly consistent GetItem. Index queries are eventually
  // consistent on DynamoDB (a GSI may still hold the version before our own last write), so
  // only consistent reads are held against the high-water mark.
  const read = (item: Store.Item, consistent = false): Effect.Effect<Session, Tampered> =>
    Effect.gen(function* () {
      const ok = yield* Integrity.verify(KIND, item).pipe(Effect.provide(context))
      if (!ok) return yield* tampered(item)
      const session = decode(item.data)
      if (
        Option.isNone(session) ||
        pk(session.value.id) !== item.pk ||
        session.value.version !== item.version
      ) {
        return yield* tampered(item)
      }
      if (consistent && seen.isRollback(item.pk, item.version)) {
        return yield* new Tampered({
          message: `stored item ${item.pk} is older than a version this broker has seen (rolled back)`,
          kind: "session"
        })
      }
      note(session.value)
      return session.value
    })

  const page = (p: Store.Page) =>
    Effect.map(
      Effect.forEach(p.items, (i) => read(i)),
      (sessions) => ({ sessions, cursor: p.cursor, read: p.read })
    )

  const liveRange = (prefix: string, now: DateTime.Utc): Store.Range => ({
    _tag: "Between",
    low: `${prefix}${iso(now)}#${HIGH}`,
    high: `${prefix}${HIGH}`
  })

  const isLiveStatus = (status: Status) => status === "pending_approval" || status === "active"

  return {
    create: (s) =>
      Effect.flatMap(sign(s), (item) => store.put(item, Store.absent)).pipe(
        Effect.tap(() => Effect.sync(() => note(s))),
        Effect.catchTag("ConditionFailed", () =>
          Effect.fail(new Conflict({ message: "a session with this id exists", reason: "concurrent-update" }))
        )
      ),
    get: (id) =>
      Effect.flatMap(store.get(pk(id), KIND), (item) =>
        Option.match(item, { onNone: () => Effect.succeedNone, onSome: (i) => Effect.asSome(read(i, true)) })
      ),
    save: (s, expectedVersion) =>
      Effect.flatMap(sign(s), (item) => store.put(item, Store.atVersion(expectedVersion))).pipe(
        Effect.tap(() => Effect.sync(() => note(s))),
        Effect.catchTag("ConditionFailed", () =>
          Effect.fail(
            new Conflict({
              message: "the session was changed by another request",
              reason: "concurrent-update"
            })
          )
        )
      ),
    listByStatus: (status, now, options) =>
      Effect.flatMap(
        store.query({
          index: "byStatus",
          pk: statusPartition(status),
          range: isLiveStatus(status) ? liveRange("", now) : undefined,
          limit: options.limit,
          cursor: options.cursor
        }),
        page
      ),
    listByAgent: (agent, status, now, options) =>
      Effect.flatMap(
        store.query({
          index: "byOwner",
          pk: agentPartition(agent),
          range:
            status === undefined
              ? { _tag: "BeginsWith", prefix: "session#" }
              : isLiveStatus(status)
                ? liveRange(`session#${status}#`, now)
                : { _tag: "BeginsWith", prefix: `session#${status}#` },
          limit: options.limit,
          cursor: options.cursor
        }),
        page
      ),
    listDue: (now, limit) =>
      Effect.gen(function* () {
        const out: Array<Session> = []
        for (const status of ["pending_approval", "active"] as const) {
          let cursor: string | undefined
          do {
            const p = yield* store.query({
              index: "byStatus",
              pk: statusPartition(status),
              range: { _tag: "Between", low: "0", high: `${iso(now)}#${HIGH}` },
              limit: limit - out.length,
              cursor
            })
            out.push(...(yield* Effect.forEach(p.items, (i) => read(i))))
            cursor = Option.getOrUndefined(p.cursor)
          } while (cursor !== undefined && out.length < limit)
          if (out.length >= limit) break
        }
        return out
      }).pipe(Effect.catchTag("InvalidCursor", (e) => Effect.die(e))),
    countLive: (agent, now, atMost) =>
      Effect.gen(function* () {
        let n = 0
        for (const status of ["pending_approval", "active"] as const) {
          let cursor: string | undefined
          do {
            const p = yield* store.query({
              index: "byOwner",
              pk: agentPartition(agent),
              range: liveRange(`session#${status}#`, now),
              limit: atMost - n,
              cursor,
              // only the number: the items are neither sent nor decoded
              select: "count"
            })
            n += p.count
            cursor = Option.getOrUndefined(p.cursor)
          } while (cursor !== undefined && n < atMost)
          if (n >= atMost) break
        }
        return n
      }).pipe(Effect.catchTag("InvalidCursor", (e) => Effect.die(e))),
    takeSlot: (agent, window, limit, expireAt) =>
      store.increment(`rate#agent#${agent}`, window, limit, expireAt),
    remember: (id, version, until) => seen.note(pk(id), version, until)
  }
})

/** The repository over whichever `CoordinationStore` is provided. */
export const layer: Layer.Layer<SessionRepository, never, Store.CoordinationStore | SystemKeys.SystemKeys> =
  Layer.effect(SessionRepository, make)
