/**
 * Entry point of the `aap` binary. `aap`, `aap --help` and `aap --version` are answered here
 * from static text; anything else loads the command tree (`main.ts`) with a dynamic `import()`,
 * which esbuild turns into a separate chunk; `aap serve` runs the broker bundle (ADR 0061).
 */
import { overview, version } from "./Overview.js"

const args = process.argv.slice(2)
if (args.length === 1 && args[0] === "--version") {
  process.stdout.write(`${version}\n`)
} else if (args.length === 0 || (args.length === 1 && (args[0] === "--help" || args[0] === "-h"))) {
  process.stdout.write(`${overview()}\n`)
} else if (args[0] === "serve" && !args.includes("--help") && !args.includes("-h")) {
  // The broker is a separate bundle (dist/serve.mjs): see serveMain.ts.
  const serve: { main: (args: ReadonlyArray<string>) => void } = await import(
    new URL("./serve.mjs", import.meta.url).href
  )
  serve.main(args.slice(1))
} else {
  await import("./main.js")
}
