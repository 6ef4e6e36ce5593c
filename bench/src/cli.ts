/**
 * CLI start-up (issue 9): wall time from spawn to exit of `aap --version` and `aap --help`
 * next to `node -e 0`, interleaved, median of N runs each in the same run. Target: median
 * ≤ 3 × `node -e 0`.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { median, type Row, round, run } from "./rows.js"

const timeOnce = async (args: ReadonlyArray<string>, cwd: string): Promise<number> => {
  const t0 = performance.now()
  const done = await run(process.execPath, args, { cwd })
  const ms = performance.now() - t0
  if (done.code !== 0) throw new Error(`node ${args.join(" ")} exited with ${done.code}: ${done.stderr}`)
  return ms
}

export const cliStartup = async (options: {
  readonly root: string
  readonly runs: number
  readonly log: (s: string) => void
}): Promise<Array<Row>> => {
  const { root, runs, log } = options
  const bin = Path.join(root, "apps/cli/bin/aap.mjs")
  if (!Fs.existsSync(Path.join(root, "apps/cli/dist/aap.mjs"))) {
    log("   the CLI is not built; building it (pnpm --filter @aap/cli build) ...")
    const b = await run("pnpm", ["--silent", "--filter", "@aap/cli", "run", "build"], { cwd: root })
    if (b.code !== 0) throw new Error(`cannot build the CLI: ${b.stderr}`)
  }
  const variants = {
    node: ["-e", "0"],
    version: [bin, "--version"],
    help: [bin, "--help"]
  } as const
  const times: Record<keyof typeof variants, Array<number>> = { node: [], version: [], help: [] }
  // one warm-up each (file cache), then interleaved rounds
  for (const v of Object.values(variants)) await timeOnce(v, root)
  for (let i = 0; i < runs; i++) {
    for (const [k, v] of Object.entries(variants) as Array<[keyof typeof variants, ReadonlyArray<string>]>) {
      times[k].push(await timeOnce(v, root))
    }
  }
  const node = median(times.node)
  const row = (what: string, xs: ReadonlyArray<number>): Row => {
    const value = median(xs)
    return {
      figure: `${what} start-up to exit (median of ${runs})`,
      unit: "ms",
      value: round(value, 1),
      baseline: round(node, 1),
      ratio: round(value / node),
      target: "<= 3 x node -e 0",
      met: value <= 3 * node
    }
  }
  return [row("aap --version", times.version), row("aap --help", times.help)]
}
