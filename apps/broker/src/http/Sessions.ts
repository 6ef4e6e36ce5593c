/**
 * Handlers of the coordination groups: sessions (agents and operators), link codes
 * (operators) and enrolment (anyone with a link code).
 */
import { Identities, Sessions } from "@aap/agent-coordination"
import { HttpApiBuilder, type HttpApiGroup } from "@effect/platform"
import { DateTime, Effect, type Layer, Option } from "effect"
import { Api } from "../Api.js"
import { Authenticator, CurrentPrincipal, type OperatorAuth, type PrincipalAuth } from "../Auth.js"
import { BrokerMetrics } from "../internal/observability.js"
import { SessionCache } from "../internal/sessionCache.js"

export const SessionsLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "sessions">,
  never,
  Sessions.Sessions | PrincipalAuth | BrokerMetrics | SessionCache
> = HttpApiBuilder.group(Api, "sessions", (handlers) =>
  Effect.gen(function* () {
    const sessions = yield* Sessions.Sessions
    const metrics = yield* BrokerMetrics
    const cache = yield* SessionCache
    const counted = <A extends { readonly id: string; readonly status: string }, E, R>(
      effect: Effect.Effect<A, E, R>
    ) =>
      Effect.tap(effect, (s) =>
        Effect.sync(() => {
          cache.invalidate(s.id)
          metrics.sessionTransitions.inc({ state: s.status })
        })
      )
    return handlers
      .handle("request", ({ payload }) =>
        Effect.flatMap(CurrentPrincipal, (p) =>
          // A session granted active at once (low and medium tier) is what the store now holds:
          // it is cached as delivery would read it, so the first delivery reads no store (ADR 0055).
          Effect.tap(counted(sessions.request(p, payload)), (s) =>
            Effect.sync(() => {
              if (s.status === "active") {
                cache.set(s.id, {
                  id: s.id,
                  agent: s.agent,
                  wallet: s.wallet,
                  capability: s.capability,
                  tier: s.tier,
                  status: s.status,
                  expiresAt: s.expiresAt
                })
              }
            })
          )
        )
      )
      .handle("get", ({ path }) => Effect.flatMap(CurrentPrincipal, (p) => sessions.get(p, path.id)))
      .handle("list", ({ urlParams }) =>
        Effect.flatMap(CurrentPrincipal, (p) =>
          Effect.map(sessions.list(p, urlParams), (page) =>
            Option.match(page.cursor, {
              onNone: () => ({ sessions: page.sessions }),
              onSome: (cursor) => ({ sessions: page.sessions, cursor })
            })
          )
        )
      )
      .handle("revoke", ({ path, payload }) =>
        Effect.flatMap(CurrentPrincipal, (p) => counted(sessions.revoke(p, path.id, payload)))
      )
      .handle("approve", ({ path, payload }) =>
        Effect.flatMap(CurrentPrincipal, (p) => counted(sessions.approve(p, path.id, payload)))
      )
      .handle("deny", ({ path, payload }) =>
        Effect.flatMap(CurrentPrincipal, (p) => counted(sessions.deny(p, path.id, payload)))
      )
  })
)

export const LinkCodesLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "linkCodes">,
  never,
  Identities.Identities | OperatorAuth
> = HttpApiBuilder.group(Api, "linkCodes", (handlers) =>
  Effect.gen(function* () {
    const identities = yield* Identities.Identities
    return handlers.handle("issue", ({ path }) =>
      Effect.flatMap(CurrentPrincipal, (p) =>
        Effect.map(identities.issueLinkCode(p, path.id), (issued) => ({
          code: issued.code,
          expiresAt: DateTime.toUtc(issued.expiresAt)
        }))
      )
    )
  })
)

export const TokensLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "tokens">,
  never,
  Identities.Identities | Authenticator | OperatorAuth
> = HttpApiBuilder.group(Api, "tokens", (handlers) =>
  Effect.gen(function* () {
    const identities = yield* Identities.Identities
    const authenticator = yield* Authenticator
    return handlers
      .handle("list", ({ path }) =>
        Effect.flatMap(CurrentPrincipal, (p) =>
          Effect.map(identities.listTokens(p, { type: "agent", id: path.id }), (tokens) => ({
            tokens: tokens.map((t) => ({
              fingerprint: t.fingerprint,
              createdAt: t.createdAt,
              ...(Option.isSome(t.revokedAt) ? { revokedAt: t.revokedAt.value } : {})
            }))
          }))
        )
      )
      .handle("revoke", ({ path, payload }) =>
        Effect.flatMap(CurrentPrincipal, (p) =>
          Effect.map(
            identities.revokeTokens(p, { type: "agent", id: path.id }, payload.fingerprint),
            (revoked) => {
              if (revoked > 0) authenticator.forget?.()
              return { revoked }
            }
          )
        )
      )
  })
)

export const EnrolmentLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "enrolment">,
  never,
  Identities.Identities
> = HttpApiBuilder.group(Api, "enrolment", (handlers) =>
  Effect.gen(function* () {
    const identities = yield* Identities.Identities
    return handlers.handle("redeem", ({ payload }) => identities.redeemLinkCode(payload.code))
  })
)
