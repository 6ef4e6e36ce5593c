/**
 * Entry point of the `aap` binary. `aap`, `aap --help` and `aap --version` are answered here
 * from static text; anything else loads the command tree (`main.ts`) with a dynamic `import()`,
 * which esbuild turns into a separate chunk (ADR 0061).
 */
import { overview, version } from "./Overview.js"

const args = process.argv.slice(2)
if (args.length === 1 && args[0] === "--version") {
  process.stdout.write(`${version}\n`)
} else if (args.length === 0 || (args.length === 1 && (args[0] === "--help" || args[0] === "-h"))) {
  process.stdout.write(`${overview()}\n`)
} else {
  await import("./main.js")
}
