/**
 * The JSON Schema of the catalog file, generated from the Effect schema so editors
 * (yaml-language-server) validate and complete catalogs. Committed at
 * `schema/catalog.schema.json`; regenerate with `pnpm schema`.
 */
import { JSONSchema } from "effect"
import * as Catalog from "./Catalog.js"

/** The JSON Schema document (draft-07). */
export const make = (): object => JSONSchema.make(Catalog.Catalog)

/** The committed file's exact text: two-space indented JSON with a trailing newline. */
export const render = (): string => `${JSON.stringify(make(), null, 2)}\n`
