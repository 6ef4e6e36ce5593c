// Adds up the vitest JSON reports of every package into one closing line.
import fs from "node:fs"
import path from "node:path"

const roots = ["contexts", "apps", "tooling", "bench"]
let passed = 0
let failed = 0
let skipped = 0
const rows = []
for (const root of roots) {
  if (!fs.existsSync(root)) continue
  for (const dir of fs.readdirSync(root)) {
    const file = path.join(root, dir, "reports", "vitest.json")
    if (!fs.existsSync(file)) continue
    const r = JSON.parse(fs.readFileSync(file, "utf8"))
    passed += r.numPassedTests
    failed += r.numFailedTests
    skipped += r.numPendingTests + (r.numTodoTests ?? 0)
    rows.push(`${path.join(root, dir).padEnd(32)} ${String(r.numPassedTests).padStart(5)} passed ${String(r.numFailedTests).padStart(3)} failed`)
  }
}
console.log(rows.join("\n"))
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`)
if (rows.length === 0 || failed > 0 || passed === 0) process.exit(1)
