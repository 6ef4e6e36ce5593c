/**
 * Bearer authentication and the current principal. The broker owns authentication
 * (ADR 0050): the contexts declare endpoints without auth; the broker adds these middlewares
 * when it composes the groups, and the handlers read `CurrentPrincipal`.
 *
 * @since 0.1.0
 */

import { Errors, type Principal as P } from "@aap/agent-coordination"
import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Context, Effect, Layer, Redacted, Schema } from "effect"

const { Forbidden, Unauthorized, Unavailable } = Errors

/**
 * Who is calling (the coordination context's principal).
 *
 * @since 0.1.0
 * @category models
 */
export type Principal = P.Principal

/**
 * @since 0.1.0
 * @category tags
 */
export class CurrentPrincipal extends Context.Tag("@aap/broker/CurrentPrincipal")<
  CurrentPrincipal,
  Principal
>() {}

/**
 * Turns a presented bearer token into a principal. The broker's adapter calls the coordination
 * context (with a short-lived cache, ADR 0052); tests may provide their own.
 *
 * @since 0.1.0
 * @category tags
 */
export class Authenticator extends Context.Tag("@aap/broker/Authenticator")<
  Authenticator,
  {
    readonly authenticate: (
      token: Redacted.Redacted<string>
    ) => Effect.Effect<Principal, Errors.Unauthorized | Errors.Unavailable>
    /**
     * Drops every cached authentication, so a token revoked through this broker fails from the
     * next request on (not only after `AAP_CACHE_TTL`). Absent when nothing is cached.
     */
    readonly forget?: (() => void) | undefined
  }
>() {}

const AuthFailure = Schema.Union(Unauthorized, Forbidden, Unavailable)

/**
 * Agents only.
 *
 * @since 0.1.0
 * @category middleware
 */
export class AgentAuth extends HttpApiMiddleware.Tag<AgentAuth>()("@aap/broker/AgentAuth", {
  failure: AuthFailure,
  provides: CurrentPrincipal,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * Operators only.
 *
 * @since 0.1.0
 * @category middleware
 */
export class OperatorAuth extends HttpApiMiddleware.Tag<OperatorAuth>()("@aap/broker/OperatorAuth", {
  failure: AuthFailure,
  provides: CurrentPrincipal,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * Agents or operators; the handler decides (e.g. owner agent or any operator).
 *
 * @since 0.1.0
 * @category middleware
 */
export class PrincipalAuth extends HttpApiMiddleware.Tag<PrincipalAuth>()("@aap/broker/PrincipalAuth", {
  failure: AuthFailure,
  provides: CurrentPrincipal,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const authenticateWith = (auth: Authenticator["Type"], token: Redacted.Redacted<string>) =>
  Redacted.value(token).length === 0
    ? Effect.fail(new Unauthorized({ message: "missing bearer token" }))
    : auth.authenticate(token)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerAgentAuth: Layer.Layer<AgentAuth, never, Authenticator> = Layer.effect(
  AgentAuth,
  Effect.map(Authenticator, (auth) =>
    AgentAuth.of({
      bearer: (token) =>
        Effect.flatMap(authenticateWith(auth, token), (p) =>
          p._tag === "agent"
            ? Effect.succeed(p)
            : Effect.fail(new Forbidden({ message: "this endpoint is for agents" }))
        )
    })
  )
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerOperatorAuth: Layer.Layer<OperatorAuth, never, Authenticator> = Layer.effect(
  OperatorAuth,
  Effect.map(Authenticator, (auth) =>
    OperatorAuth.of({
      bearer: (token) =>
        Effect.flatMap(authenticateWith(auth, token), (p) =>
          p._tag === "operator"
            ? Effect.succeed(p)
            : Effect.fail(new Forbidden({ message: "this endpoint is for operators" }))
        )
    })
  )
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerPrincipalAuth: Layer.Layer<PrincipalAuth, never, Authenticator> = Layer.effect(
  PrincipalAuth,
  Effect.map(Authenticator, (auth) => PrincipalAuth.of({ bearer: (token) => authenticateWith(auth, token) }))
)

/**
 * All three middlewares.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<AgentAuth | OperatorAuth | PrincipalAuth, never, Authenticator> =
  Layer.mergeAll(layerAgentAuth, layerOperatorAuth, layerPrincipalAuth)

/**
 * The current principal if it is an operator, else `Forbidden`.
 *
 * @since 0.1.0
 */
export const requireOperator: Effect.Effect<
  { readonly _tag: "operator"; readonly id: string },
  Errors.Forbidden,
  CurrentPrincipal
> = Effect.flatMap(CurrentPrincipal, (p) =>
  p._tag === "operator"
    ? Effect.succeed(p)
    : Effect.fail(new Forbidden({ message: "this endpoint is for operators" }))
)

/**
 * The current principal if it is an agent, else `Forbidden`.
 *
 * @since 0.1.0
 */
export const requireAgent: Effect.Effect<
  { readonly _tag: "agent"; readonly id: string; readonly wallet: string },
  Errors.Forbidden,
  CurrentPrincipal
> = Effect.flatMap(CurrentPrincipal, (p) =>
  p._tag === "agent"
    ? Effect.succeed(p)
    : Effect.fail(new Forbidden({ message: "this endpoint is for agents" }))
)
