/**
 * Entry point of the `aap` binary. `aap`, `aap --help` and `aap --version` are answered here
 * from static text; anything else loads the command tree (`main.ts`) with a dynamic `import()`,
 * which esbuild turns into a separate chunk; `aap serve` / `aap worker` run the daemon bundle (ADR 0061).
 */
import { overview, version } from "./Overview.js"

/**
 * The AWS SDK warns when it loads that Node 20 support ends in 2027 (ADR 0004 pins Node 20);
 * its own switch turns that one warning off for the daemon (not for `aap exec` children).
 */
const quietNodeVersionWarning = () => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true"
}

const args = process.argv.slice(2)
if (args.length === 1 && args[0] === "--version") {
  process.stdout.write(`${version}\n`)
} else if (args.length === 0 || (args.length === 1 && (args[0] === "--help" || args[0] === "-h"))) {
  process.stdout.write(`${overview()}\n`)
} else if (
  (args[0] === "serve" || args[0] === "worker") &&
  !args.includes("--help") &&
  !args.includes("-h")
) {
  // The broker and the worker are a separate bundle (dist/daemon.mjs): see daemon.ts.
  quietNodeVersionWarning()
  const daemon: { main: (command: "serve" | "worker", args: ReadonlyArray<string>) => void } = await import(
    new URL("./daemon.mjs", import.meta.url).href
  )
  daemon.main(args[0], args.slice(1))
} else {
  await import("./main.js")
}
