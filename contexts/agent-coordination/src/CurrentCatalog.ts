/**
 * The catalog in force. The broker owns loading and reloading (an invalid file keeps the old
 * catalog); coordination only reads the current one, at the moment of each decision.
 *
 * @since 0.1.0
 */
import type { Catalog } from "@aap/catalog"
import { Context, type Effect, Layer, Ref } from "effect"

export interface CurrentCatalogShape {
  readonly get: Effect.Effect<Catalog.Catalog>
}

export class CurrentCatalog extends Context.Tag("@aap/agent-coordination/CurrentCatalog")<
  CurrentCatalog,
  CurrentCatalogShape
>() {}

/** A fixed catalog (tests, one-shot tools). */
export const layer = (catalog: Catalog.Catalog): Layer.Layer<CurrentCatalog> =>
  Layer.succeed(CurrentCatalog, { get: Ref.get(Ref.unsafeMake(catalog)) })

/** A catalog the caller replaces on reload (`Ref.set(ref, next)`). */
export const fromRef = (ref: Ref.Ref<Catalog.Catalog>): Layer.Layer<CurrentCatalog> =>
  Layer.succeed(CurrentCatalog, { get: Ref.get(ref) })
