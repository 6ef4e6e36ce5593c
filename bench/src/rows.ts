/**
 * The row every aap benchmark prints with `--json` (one JSON object per line), and the machine
 * facts RESULTS.md records next to them.
 */
import { spawn } from "node:child_process"
import * as Os from "node:os"

export interface Row {
  readonly figure: string
  readonly unit: string
  readonly value: number
  readonly baseline: number
  readonly ratio: number
  readonly target: string
  readonly met: boolean
}

/** A row with the benchmark it came from. */
export interface SourcedRow extends Row {
  readonly bench: string
}

const isRow = (u: unknown): u is Row => {
  if (u === null || typeof u !== "object") return false
  const r = u as Record<string, unknown>
  return typeof r.figure === "string" && typeof r.unit === "string" && typeof r.met === "boolean"
}

const rowsOf = (u: unknown): Array<Row> => (Array.isArray(u) ? u.filter(isRow) : isRow(u) ? [u] : [])

const tryParse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * The rows a benchmark printed: one JSON object per line, or one JSON array (pretty-printed or
 * not). Other output, e.g. a package manager's, is ignored.
 */
export const parseRows = (stdout: string): Array<Row> => {
  const whole = rowsOf(tryParse(stdout.trim()))
  if (whole.length > 0) return whole
  const lines = stdout.split("\n")
  const perLine = lines.flatMap((line) => (line.trim().startsWith("{") ? rowsOf(tryParse(line.trim())) : []))
  if (perLine.length > 0) return perLine
  const start = lines.findIndex((line) => line.startsWith("["))
  return start < 0 ? [] : rowsOf(tryParse(lines.slice(start).join("\n").trim()))
}

export const round = (n: number, digits = 2): number => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length === 0
    ? Number.NaN
    : s.length % 2 === 1
      ? (s[mid] ?? 0)
      : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

export interface Machine {
  readonly cpus: number
  readonly model: string
  readonly memoryGiB: number
  readonly node: string
  readonly platform: string
  readonly loadAverage: ReadonlyArray<number>
}

export const machine = (): Machine => ({
  cpus: Os.cpus().length,
  model: Os.cpus()[0]?.model.trim() ?? "unknown",
  memoryGiB: round(Os.totalmem() / 1024 ** 3, 1),
  node: process.version,
  platform: `${Os.type()} ${Os.release()} ${Os.arch()}`,
  loadAverage: Os.loadavg().map((l) => round(l, 2))
})

export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly seconds: number
}

/** Run a command to completion, collecting its output (stderr also echoed when `echo`). */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly echo?: boolean; readonly env?: NodeJS.ProcessEnv }
): Promise<Finished> =>
  new Promise((resolve) => {
    const started = performance.now()
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString("utf8")
    })
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString("utf8")
      if (options.echo) process.stderr.write(b)
    })
    child.on("error", (e) => {
      stderr += String(e)
    })
    child.on("close", (code) =>
      resolve({ code, stdout, stderr, seconds: round((performance.now() - started) / 1000, 1) })
    )
  })
