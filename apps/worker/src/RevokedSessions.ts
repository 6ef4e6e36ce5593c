/**
 * Revoked sessions whose grant has not yet run out: what the upstream revocation and the STS
 * deny list act on. Read through the coordination table's `byStatus` GSI
 * (`session-status#revoked`, sort key `<ended ISO>#<id>`) with a key condition on the end time
 * (`ended >= now - lookback`), so only recent revocations are read, never the whole history.
 *
 * The coordination context has no repository method for this yet (asked for in the worker's
 * report): this module queries its public `CoordinationStore` port and decodes the items with
 * its public `Session` schema. It does not check the items' integrity MACs (that code is
 * internal to the context); a forged "revoked" item can only make the worker revoke or deny
 * more, never less (fails closed).
 *
 * @since 0.1.0
 */
import { CoordinationStore, type Errors, Session, SessionRepository } from "@aap/agent-coordination"
import { DateTime, Effect, Option, Schema } from "effect"

export interface Revoked {
  readonly id: string
  readonly agent: string
  readonly wallet: string
  readonly capability: string
  readonly revokedAt: DateTime.Utc
  readonly expiresAt: DateTime.Utc
}

const decode = Schema.decodeUnknownOption(Session.Session)

/**
 * Revoked sessions ended at or after `now - lookbackSeconds` whose deadline is still after
 * `now`. The lookback must cover the longest grant (the catalog's tier ceilings: 24 h).
 */
export const list = (
  now: DateTime.Utc,
  lookbackSeconds: number
): Effect.Effect<ReadonlyArray<Revoked>, Errors.Unavailable, CoordinationStore.CoordinationStore> =>
  Effect.gen(function* () {
    const store = yield* CoordinationStore.CoordinationStore
    const since = DateTime.formatIso(DateTime.subtract(now, { seconds: lookbackSeconds }))
    const out: Array<Revoked> = []
    let cursor: string | undefined
    do {
      const page = yield* store.query({
        index: "byStatus",
        pk: SessionRepository.statusPartition("revoked"),
        range: { _tag: "Between", low: since, high: "~" },
        limit: 100,
        ...(cursor === undefined ? {} : { cursor })
      })
      for (const item of page.items) {
        const s = decode(item.data)
        if (
          Option.isNone(s) ||
          SessionRepository.pk(s.value.id) !== item.pk ||
          s.value.status !== "revoked"
        ) {
          yield* Effect.logWarning("skipping an undecodable revoked-session item").pipe(
            Effect.annotateLogs({ pk: item.pk })
          )
          continue
        }
        const session = s.value
        if (DateTime.lessThanOrEqualTo(session.expiresAt, now)) continue
        out.push({
          id: session.id,
          agent: session.agent,
          wallet: session.wallet,
          capability: session.capability,
          revokedAt: session.ended?.at ?? session.updatedAt,
          expiresAt: session.expiresAt
        })
      }
      cursor = Option.getOrUndefined(page.cursor)
    } while (cursor !== undefined)
    return out
  }).pipe(Effect.catchTag("InvalidCursor", (e) => Effect.die(e)))
