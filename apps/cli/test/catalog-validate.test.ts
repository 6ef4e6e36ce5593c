import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("../../../", import.meta.url))
const bin = fileURLToPath(new URL("../bin/aap.mjs", import.meta.url))
const fixtures = "contexts/catalog/test/fixtures"

const aap = (args: ReadonlyArray<string>, env: Record<string, string> = {}, cwd = root) => {
  const { AAP_CATALOG: _, ...rest } = process.env
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...rest, NO_COLOR: "1", ...env }
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe("aap catalog validate", () => {
  it("validates examples/catalog.yaml by default and exits 0 with a summary", () => {
    const result = aap(["catalog", "validate"])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(
      result.stdout.trim(),
      "examples/catalog.yaml: valid (3 agents, 2 operators, 8 capabilities: low 1, medium 4, high 2, critical 1)"
    )
  })

  it("uses $AAP_CATALOG when no FILE is given", () => {
    const result = aap(["catalog", "validate"], { AAP_CATALOG: `${fixtures}/missing-field.yaml` })
    assert.strictEqual(result.code, 1)
    assert.include(result.stdout, `${fixtures}/missing-field.yaml:10:10 capabilities[0].ttl.max`)
  })

  it("lists every error as file:line:column path: message and exits 1", () => {
    const file = `${fixtures}/many-errors.yaml`
    const result = aap(["catalog", "validate", file])
    assert.strictEqual(result.code, 1)
    const lines = result.stdout.trim().split("\n")
    assert.strictEqual(lines.length, 9)
    assert.strictEqual(
      lines[0],
      `${file}:4:11 agents[1].id: duplicate agent id "codex"; first declared at agents[0]`
    )
    assert.strictEqual(
      lines[6],
      `${file}:15:30 capabilities[1].ttl.max: max 1h is above the critical tier ceiling of 15m`
    )
    assert.strictEqual(lines[8], `${file}: 8 errors`)
  })

  it("--json prints one machine-readable document", () => {
    const ok = aap(["catalog", "validate", "--json", "examples/catalog.yaml"])
    assert.strictEqual(ok.code, 0)
    assert.deepStrictEqual(JSON.parse(ok.stdout), {
      file: "examples/catalog.yaml",
      valid: true,
      agents: 3,
      operators: 2,
      capabilities: 8,
      tiers: { low: 1, medium: 4, high: 2, critical: 1 }
    })
    const bad = aap(["catalog", "validate", "--json", `${fixtures}/ttl-above-tier-ceiling.yaml`])
    assert.strictEqual(bad.code, 1)
    assert.deepStrictEqual(JSON.parse(bad.stdout), {
      file: `${fixtures}/ttl-above-tier-ceiling.yaml`,
      valid: false,
      issues: [
        {
          line: 12,
          column: 12,
          path: "capabilities[0].ttl.max",
          message: "max 2h is above the high tier ceiling of 1h"
        }
      ]
    })
  })

  it("a missing file is one clear line, not a stack trace", () => {
    const result = aap(["catalog", "validate", "no/such/catalog.yaml"])
    assert.strictEqual(result.code, 1)
    assert.strictEqual(result.stderr.trim(), "aap: cannot read catalog no/such/catalog.yaml: no such file")
    const json = aap(["catalog", "validate", "--json", "no/such/catalog.yaml"])
    assert.strictEqual(json.code, 1)
    assert.strictEqual(JSON.parse(json.stdout).valid, false)
  })

  it("an unknown option is a usage error (exit 2)", () => {
    const result = aap(["catalog", "validate", "--bogus"])
    assert.strictEqual(result.code, 2)
    assert.include(result.stderr, "unknown option --bogus")
  })
})
