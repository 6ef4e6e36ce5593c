/**
 * Start-up of the built binary: median wall time of `aap --version`, `aap --help` and a client
 * command that fails fast (`aap session list` against a closed port: parse, load the typed
 * client, one refused connection) next to `node -e 0` measured in the same interleaved rounds.
 * Target (issue 9): --version and --help ≤ 3 × node -e 0. `--json` prints the rows.
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const bin = fileURLToPath(new URL("../bin/aap.mjs", import.meta.url))
const rounds = Number(process.env.ROUNDS ?? 21)
const cases: ReadonlyArray<{ name: string; argv: ReadonlyArray<string>; target?: number }> = [
  { name: "node -e 0", argv: ["-e", "0"] },
  { name: "aap --version", argv: [bin, "--version"], target: 3 },
  { name: "aap --help", argv: [bin, "--help"], target: 3 },
  {
    name: "aap session list (unreachable broker)",
    argv: [bin, "session", "list", "--url", "http://127.0.0.1:9"]
  }
]

const time = (argv: ReadonlyArray<string>) => {
  const t0 = process.hrtime.bigint()
  spawnSync(process.execPath, argv, { stdio: "ignore", env: { ...process.env, NO_COLOR: "1" } })
  return Number(process.hrtime.bigint() - t0) / 1e6
}

const samples = new Map(cases.map((c) => [c.name, [] as Array<number>]))
for (const c of cases) time(c.argv) // warm the file cache
for (let r = 0; r < rounds; r++) for (const c of cases) samples.get(c.name)?.push(time(c.argv))
const median = (xs: Array<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}
const baseline = median(samples.get("node -e 0") ?? [])
const rows = cases.slice(1).map((c) => {
  const value = median(samples.get(c.name) ?? [])
  const ratio = value / baseline
  return {
    figure: `${c.name} median`,
    unit: "ms",
    value: Math.round(value),
    baseline: Math.round(baseline),
    ratio: Math.round(ratio * 100) / 100,
    target: c.target === undefined ? null : `≤ ${c.target} × node -e 0`,
    met: c.target === undefined ? null : ratio <= c.target
  }
})
if (process.argv.includes("--json")) console.log(JSON.stringify(rows, null, 2))
else {
  console.log(`start-up, ${rounds} interleaved rounds; baseline node -e 0 median ${Math.round(baseline)} ms`)
  for (const r of rows) {
    console.log(
      `${r.figure.padEnd(48)} ${String(r.value).padStart(5)} ms  ${r.ratio.toFixed(2)} × baseline${r.target === null ? "" : `  target ${r.target}: ${r.met ? "met" : "NOT met"}`}`
    )
  }
}
