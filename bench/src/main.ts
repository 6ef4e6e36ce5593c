/**
 * Every aap benchmark, one after the other (never two at once: each measures against a
 * baseline taken in the same run, and a parallel neighbour would skew both), then
 * `bench/RESULTS.md`.
 *
 *   pnpm bench                      all benchmarks, table on stderr, writes bench/RESULTS.md
 *   pnpm bench --json               the same rows on stdout, one JSON object per line
 *   pnpm bench --only crypto,cli    a subset (names below); RESULTS.md is not rewritten
 *   pnpm bench soak [--seconds 60]  60 s of mixed load against a real broker (see soak.ts)
 *
 * Each per-package benchmark is its package's own `bench` script run with `--json`; this
 * program adds the CLI start-up figure and the machine facts.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { cliStartup } from "./cli.js"
import { machine, parseRows, type Row, run, type SourcedRow } from "./rows.js"
import { soak } from "./soak.js"

const root = Path.resolve(import.meta.dirname, "../..")
const args = process.argv.slice(2).filter((a) => a !== "--")
const json = args.includes("--json")
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const log = (s: string) => process.stderr.write(`${s}\n`)

interface Bench {
  readonly name: string
  /** Issue whose targets the rows carry. */
  readonly issue: number
  readonly dir: string
  /** The package script to run, or a file run with tsx when the script is missing. */
  readonly script: string
  readonly file?: string
  readonly extra?: ReadonlyArray<string>
}

const benches: ReadonlyArray<Bench> = [
  { name: "crypto", issue: 3, dir: "contexts/key-custody", script: "bench" },
  { name: "vault", issue: 4, dir: "contexts/vault", script: "bench" },
  { name: "audit", issue: 5, dir: "contexts/audit", script: "bench" },
  { name: "broker deliveries", issue: 8, dir: "apps/broker", script: "bench" },
  { name: "proxy", issue: 12, dir: "apps/broker", script: "bench:proxy", file: "bench/proxy.ts" },
  { name: "worker sweep", issue: 10, dir: "apps/worker", script: "bench", extra: ["--total", "100000"] }
]

const scriptsOf = (dir: string): Record<string, string> => {
  try {
    const pkg = JSON.parse(Fs.readFileSync(Path.join(root, dir, "package.json"), "utf8")) as {
      scripts?: Record<string, string>
    }
    return pkg.scripts ?? {}
  } catch {
    return {}
  }
}

interface Outcome {
  readonly name: string
  readonly issue: number
  readonly seconds: number
  readonly rows: ReadonlyArray<Row>
  readonly problem?: string
}

const runBench = async (b: Bench): Promise<Outcome> => {
  const scripts = scriptsOf(b.dir)
  const extra = [...(b.extra ?? [])]
  let command: [string, Array<string>]
  if (scripts[b.script] !== undefined) {
    command = ["pnpm", ["--silent", "run", b.script, "--json", ...extra]]
  } else if (b.file !== undefined && Fs.existsSync(Path.join(root, b.dir, b.file))) {
    command = ["pnpm", ["--silent", "exec", "tsx", b.file, "--json", ...extra]]
  } else {
    return { name: b.name, issue: b.issue, seconds: 0, rows: [], problem: "not present in this tree" }
  }
  log(`\n== ${b.name} (${b.dir}: ${command[1].slice(1).join(" ")}) ...`)
  const done = await run(command[0], command[1], { cwd: Path.join(root, b.dir), echo: !json })
  const rows = parseRows(done.stdout)
  const problem =
    done.code !== 0
      ? `exited with ${done.code}: ${done.stderr.trim().split("\n").slice(-3).join(" / ")}`
      : rows.length === 0
        ? "printed no rows"
        : undefined
  return { name: b.name, issue: b.issue, seconds: done.seconds, rows, ...(problem ? { problem } : {}) }
}

const cell = (v: unknown): string => {
  // a ratio that does not exist (NaN, serialised by JSON as null) prints as a dash
  if (v === null || v === undefined) return "–"
  if (typeof v === "number")
    return Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: 2 }) : "n/a"
  return String(v).replace(/\|/g, "\\|")
}

const gitCommit = async (): Promise<string> => {
  const r = await run("git", ["rev-parse", "--short", "HEAD"], { cwd: root })
  return r.code === 0 ? r.stdout.trim() : "unknown"
}

const markdown = (
  outcomes: ReadonlyArray<Outcome>,
  before: ReturnType<typeof machine>,
  after: ReturnType<typeof machine>,
  commit: string,
  started: Date
): string => {
  const all = outcomes.flatMap((o) => o.rows)
  const met = all.filter((r) => r.met).length
  const lines = [
    "# Benchmark results",
    "",
    `Written by \`pnpm bench\` (bench/src/main.ts) on ${started.toISOString()} at commit \`${commit}\`.`,
    "Every figure's baseline was measured in the same run, on the same machine; the benchmarks ran",
    "one after the other. Targets come from each benchmark's issue.",
    "",
    "## Machine",
    "",
    `- ${before.cpus} CPUs: ${before.model}; ${before.memoryGiB} GiB RAM; ${before.platform}; Node ${before.node}`,
    `- load average (1/5/15 min) at start: ${before.loadAverage.join(" / ")}; at the end: ${after.loadAverage.join(" / ")}`,
    "",
    `> This machine is shared: ${before.cpus} cores with several engineers building and testing at the`,
    "> same time (a load average above the core count means other processes competed for the CPU",
    "> during the run). Absolute figures (ops/s, req/s, latency) are therefore pessimistic and noisy;",
    "> the ratios against a same-run baseline are the figures to read. Re-run on an idle machine",
    "> before quoting absolute numbers.",
    "",
    `**${met} of ${all.length} figures met their target.**`,
    ""
  ]
  for (const o of outcomes) {
    lines.push(`## ${o.name} (issue ${o.issue}${o.seconds > 0 ? `, ${o.seconds} s` : ""})`, "")
    if (o.problem !== undefined) lines.push(`Not measured: ${o.problem}.`, "")
    if (o.rows.length > 0) {
      lines.push(
        "| figure | ours | baseline | ratio | unit | target | met |",
        "|---|--:|--:|--:|---|---|---|"
      )
      for (const r of o.rows) {
        lines.push(
          `| ${cell(r.figure)} | ${cell(r.value)} | ${cell(r.baseline)} | ${cell(r.ratio)} | ${cell(r.unit)} | ${cell(r.target)} | ${r.met ? "yes" : "**no**"} |`
        )
      }
      lines.push("")
    }
  }
  lines.push(
    "## Soak",
    "",
    "`pnpm bench soak` (60 s of mixed load against `aap serve`) writes its own figures to",
    "[SOAK.md](SOAK.md): broker RSS at the start and the end, requests, and the error count.",
    ""
  )
  return lines.join("\n")
}

const main = async () => {
  if (args[0] === "soak") {
    const seconds = Number(flag("--seconds") ?? 60)
    const rows = await soak({ root, seconds, log })
    if (json) for (const r of rows) process.stdout.write(`${JSON.stringify({ bench: "soak", ...r })}\n`)
    else console.table(rows)
    return
  }
  const only = flag("--only")
    ?.split(",")
    .map((s) => s.trim())
  const pick = (name: string) => only === undefined || only.some((o) => name.startsWith(o))
  const started = new Date()
  const before = machine()
  const commit = await gitCommit()
  const outcomes: Array<Outcome> = []
  for (const b of benches) {
    if (!pick(b.name)) continue
    const o = await runBench(b)
    outcomes.push(o)
    if (o.problem !== undefined) log(`   ${b.name}: ${o.problem}`)
    if (json)
      for (const r of o.rows)
        process.stdout.write(`${JSON.stringify({ bench: o.name, ...r } satisfies SourcedRow)}\n`)
  }
  if (pick("cli")) {
    log("\n== cli start-up ...")
    const t0 = performance.now()
    const rows = await cliStartup({ root, runs: 21, log })
    outcomes.push({
      name: "cli start-up",
      issue: 9,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      rows
    })
    if (json)
      for (const r of rows) process.stdout.write(`${JSON.stringify({ bench: "cli start-up", ...r })}\n`)
  }
  const after = machine()
  if (!json) {
    console.table(outcomes.flatMap((o) => o.rows.map((r) => ({ bench: o.name, ...r }))))
  }
  if (only === undefined) {
    const file = Path.join(root, "bench/RESULTS.md")
    Fs.writeFileSync(file, markdown(outcomes, before, after, commit, started))
    log(`\nwrote ${Path.relative(process.cwd(), file)}`)
  }
  const broken = outcomes.filter((o) => o.problem !== undefined && o.problem !== "not present in this tree")
  if (broken.length > 0) process.exitCode = 1
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
