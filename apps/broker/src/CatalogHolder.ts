/**
 * The catalog in force. Loaded at start; `reload` re-reads the file and swaps it in only when
 * it is valid (an invalid file keeps the old catalog, DESIGN §10).
 *
 * @since 0.1.0
 */

import { type Catalog, CatalogFile } from "@aap/catalog"
import type { FileSystem } from "@effect/platform"
import { Context, Effect, Layer, Ref } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface CatalogHolderShape {
  readonly file: string
  readonly current: Effect.Effect<Catalog.Catalog>
  readonly reload: Effect.Effect<Catalog.Catalog, Catalog.CatalogInvalid | Catalog.CatalogUnreadable>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class CatalogHolder extends Context.Tag("@aap/broker/CatalogHolder")<
  CatalogHolder,
  CatalogHolderShape
>() {}

/**
 * Loads `file` (failing the start when invalid) and keeps it for reloads.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  file: string
): Layer.Layer<CatalogHolder, Catalog.CatalogInvalid | Catalog.CatalogUnreadable, FileSystem.FileSystem> =>
  Layer.effect(
    CatalogHolder,
    Effect.gen(function* () {
      const context = yield* Effect.context<FileSystem.FileSystem>()
      const initial = yield* CatalogFile.load(file)
      const ref = yield* Ref.make(initial)
      const reload = CatalogFile.load(file).pipe(
        Effect.tap((catalog) => Ref.set(ref, catalog)),
        Effect.provide(context)
      )
      return CatalogHolder.of({ file, current: Ref.get(ref), reload })
    })
  )
