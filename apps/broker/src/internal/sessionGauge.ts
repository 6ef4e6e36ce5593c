/**
 * `aap_sessions{state}`: live sessions (pending_approval, active) counted through the status
 * index (never a scan), at most `cap` per state, refreshed at most every `every` ms. Terminal
 * states are not counted (they only grow); `aap_session_transitions_total` covers them.
 */
import { SessionRepository } from "@aap/agent-coordination"
import { DateTime, Effect, Layer, Option } from "effect"
import { BrokerMetrics } from "./observability.js"

const LIVE = ["pending_approval", "active"] as const

export const layerSessionGauge = (options: {
  readonly cap: number
  readonly every: number
}): Layer.Layer<never, never, SessionRepository.SessionRepository | BrokerMetrics> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const repo = yield* SessionRepository.SessionRepository
      const metrics = yield* BrokerMetrics
      const runtime = yield* Effect.runtime<never>()
      let cached: { at: number; rows: ReadonlyArray<readonly [{ state: string }, number]> } | undefined
      const countState = (state: (typeof LIVE)[number]) =>
        Effect.gen(function* () {
          const now = yield* DateTime.now
          let n = 0
          let cursor: string | undefined
          do {
            const page = yield* repo.listByStatus(state, now, { limit: 100, cursor })
            n += page.sessions.length
            cursor = Option.getOrUndefined(page.cursor)
          } while (cursor !== undefined && n < options.cap)
          return n
        })
      metrics.registry.gauge("aap_sessions", "Live sessions by state (counted up to a cap).", async () => {
        if (cached !== undefined && Date.now() - cached.at < options.every) return cached.rows
        const rows = await Effect.runPromise(
          Effect.forEach(LIVE, (state) =>
            countState(state).pipe(
              Effect.map((n) => [{ state }, n] as const),
              Effect.orElseSucceed(() => [{ state }, Number.NaN] as const)
            )
          ).pipe(Effect.provide(runtime))
        )
        cached = { at: Date.now(), rows }
        return rows
      })
    })
  )
