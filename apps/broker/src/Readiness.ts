/**
 * Readiness probes: `/readyz` answers 200 only when every probe succeeds (DESIGN §10: store,
 * keys, audit reachable).
 *
 * @since 0.1.0
 */
import { Context, type Effect, Layer } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface Probe {
  readonly name: string
  readonly check: Effect.Effect<unknown, unknown>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Readiness extends Context.Tag("@aap/broker/Readiness")<
  Readiness,
  { readonly checks: ReadonlyArray<Probe> }
>() {}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (checks: ReadonlyArray<Probe>): Layer.Layer<Readiness> =>
  Layer.succeed(Readiness, { checks })
