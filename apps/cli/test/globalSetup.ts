import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

/** The tests run the real bundle: build it first so `pnpm test` works in apps/cli alone. */
export default function setup(): void {
  const cwd = fileURLToPath(new URL("..", import.meta.url))
  const result = spawnSync(process.execPath, ["build.mjs"], { cwd, encoding: "utf8" })
  if (result.status !== 0) throw new Error(`apps/cli build failed:\n${result.stdout}${result.stderr}`)
}
