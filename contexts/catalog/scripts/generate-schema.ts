/**
 * Regenerate schema/catalog.schema.json from the Effect schema: `pnpm schema`.
 * `test/JsonSchema.test.ts` fails when the committed file differs from this output.
 */
import { writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { CatalogJsonSchema } from "../src/index.js"

const target = fileURLToPath(new URL("../schema/catalog.schema.json", import.meta.url))
writeFileSync(target, CatalogJsonSchema.render())
console.log(`wrote ${target}`)
