import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { CatalogJsonSchema } from "../src/index.js"

const committed = fileURLToPath(new URL("../schema/catalog.schema.json", import.meta.url))
const example = fileURLToPath(new URL("../../../examples/catalog.yaml", import.meta.url))

describe("catalog.schema.json", () => {
  it("is up to date with the Effect schema (run `pnpm schema` in contexts/catalog to regenerate)", () => {
    assert.strictEqual(readFileSync(committed, "utf8"), CatalogJsonSchema.render())
  })

  it("describes every backing type, tier and duration pattern", () => {
    const text = CatalogJsonSchema.render()
    for (const word of [
      "aws-sts",
      "bearer-token",
      "ssh-certificate",
      "wrapped-command",
      "critical",
      "openrouter"
    ]) {
      assert.include(text, `"${word}"`)
    }
    assert.include(text, "(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?")
  })

  it("examples/catalog.yaml points editors at it", () => {
    const firstLine = readFileSync(example, "utf8").split("\n")[0]
    assert.strictEqual(
      firstLine,
      "# yaml-language-server: $schema=../contexts/catalog/schema/catalog.schema.json"
    )
    const target = fileURLToPath(
      new URL("../contexts/catalog/schema/catalog.schema.json", new URL(`file://${example}`))
    )
    assert.strictEqual(target, committed)
  })
})
