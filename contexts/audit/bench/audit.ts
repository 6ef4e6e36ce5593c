/**
 * Audit benchmark (issue 5). Prints our figure next to a same-run baseline:
 *
 * - durable appends/s through `AuditLog` on the JSONL sink with 1, 32 and 256 concurrent
 *   appenders, next to a raw `fs` append + `fdatasync` loop (one event per sync) over the
 *   same lines, in the same directory;
 * - `verify` rate (records/s, reading the files and checking hashes, chain and checkpoints)
 *   next to raw SHA-256 of the same lines in memory (`crypto.hash`, one call per line).
 *
 * Targets: >= 20,000 durable events/s at 256 appenders; verify >= 0.5 x raw SHA-256.
 * `--json` prints one JSON row per figure: {figure, unit, value, baseline, ratio, target, met}.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Layer } from "effect"
import type { AuditInput } from "../src/AuditEvent.js"
import { AuditKeys, AuditLog, AuditReader, JsonlSink } from "../src/index.js"
import { seal } from "../src/internal/record.js"

const json = process.argv.includes("--json")
const seconds = Number(process.env.AAP_BENCH_SECONDS ?? "2")

interface Row {
  readonly figure: string
  readonly unit: string
  readonly value: number
  readonly baseline: number
  readonly ratio: number
  readonly target: string | null
  readonly met: boolean | null
}

const rows: Array<Row> = []
const report = (row: Row) => {
  rows.push(row)
  if (json) console.log(JSON.stringify(row))
  else
    console.log(
      `${row.figure.padEnd(52)} ${Math.round(row.value).toLocaleString("en").padStart(10)} ${row.unit.padEnd(10)} ` +
        `baseline ${Math.round(row.baseline).toLocaleString("en").padStart(10)}  ratio ${row.ratio.toFixed(2).padStart(6)}` +
        (row.target === null ? "" : `  target ${row.target}: ${row.met ? "met" : "NOT met"}`)
    )
}

const sampleInput = (i: number): AuditInput => ({
  actor: { type: "agent", id: "codex" },
  action: "credential.issued",
  outcome: "success",
  capability: "openrouter",
  session: "01JDQ8Z5Y3K4W6N7P8Q9R0S1T3",
  wallet: "codex",
  tier: "medium",
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  details: { i, ttlSeconds: 900, backing: "bearer-token" }
})

const keysLayer = AuditKeys.layerEphemeral

/** Raw baseline: append one line and fdatasync, in a loop, for `seconds`. */
const rawAppendFsync = async (dir: string, line: string): Promise<number> => {
  const handle = await Fs.open(Path.join(dir, "raw.jsonl"), "a", 0o600)
  const buffer = Buffer.from(line + "\n")
  const end = performance.now() + seconds * 1000
  let n = 0
  const start = performance.now()
  while (performance.now() < end) {
    await handle.write(buffer)
    await handle.datasync()
    n++
  }
  const elapsed = (performance.now() - start) / 1000
  await handle.close()
  return n / elapsed
}

/** Durable appends/s with `concurrency` appenders looping for `seconds`. */
const durableAppends = (dir: string, concurrency: number) =>
  Effect.gen(function* () {
    const log = yield* AuditLog.AuditLog
    let n = 0
    const start = performance.now()
    const end = start + seconds * 1000
    yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, i) => i),
      (w) =>
        Effect.gen(function* () {
          let i = 0
          while (performance.now() < end) {
            yield* log.append(sampleInput(w * 1_000_000 + i++))
            n++
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    return n / ((performance.now() - start) / 1000)
  }).pipe(
    Effect.provide(
      AuditLog.layerWith({ instanceId: `bench-${concurrency}`, appendTimeout: "30 seconds" }).pipe(
        Layer.provide(JsonlSink.layer({ dir })),
        Layer.provide(keysLayer)
      )
    )
  )

const verifyBench = (dir: string, records: number) =>
  Effect.gen(function* () {
    // write one stream of `records` events directly (sealed exactly as the writer does)
    const streamId = "verify-01JDQ8Z5Y3K4W6N7P8Q9R0S1T4"
    const streamDir = Path.join(dir, streamId)
    yield* Effect.promise(() => Fs.mkdir(streamDir, { recursive: true, mode: 0o700 }))
    let prevHash = "0".repeat(64)
    const lines: Array<string> = []
    for (let seq = 1; seq <= records; seq++) {
      const sealed = seal({
        ...(({ sensitive: _s, details, ...rest }) => ({ ...rest, details: details ?? {} }))(sampleInput(seq)),
        id: "01JDQ8Z5Y3K4W6N7P8Q9R0S1T5",
        stream: streamId,
        seq,
        ts: "2026-11-22T04:05:06.789Z",
        prevHash
      })
      prevHash = sealed.event.hash
      lines.push(sealed.line)
    }
    yield* Effect.promise(() =>
      Fs.writeFile(Path.join(streamDir, "0000000000000001.jsonl"), lines.join("\n") + "\n", { mode: 0o600 })
    )
    const keys = yield* AuditKeys.AuditKeys
    const { sink, closeAll } = yield* JsonlSink.make({ dir })
    const reader = AuditReader.make(sink, keys)
    // warm up both paths once
    yield* reader.verifyStream(streamId)
    for (const line of lines.slice(0, 10_000)) Crypto.hash("sha256", line, "hex")

    const rounds = 3
    let best = 0
    for (let r = 0; r < rounds; r++) {
      const start = performance.now()
      const result = yield* reader.verifyStream(streamId)
      const elapsed = (performance.now() - start) / 1000
      if (!result.report.ok || result.report.lastSeq !== records)
        throw new Error("verify failed in the benchmark")
      best = Math.max(best, records / elapsed)
    }
    // baseline: the faster of hashing each line as a string and as a view of one buffer
    const buffers = lines.map((line) => Buffer.from(line, "utf8"))
    let raw = 0
    for (let r = 0; r < rounds; r++) {
      let start = performance.now()
      let total = 0
      for (const line of lines) total += Crypto.hash("sha256", line, "hex").length
      raw = Math.max(raw, records / ((performance.now() - start) / 1000))
      start = performance.now()
      for (const buffer of buffers) total += Crypto.hash("sha256", buffer, "hex").length
      raw = Math.max(raw, records / ((performance.now() - start) / 1000))
      if (total === 0) throw new Error("unreachable")
    }
    yield* closeAll
    return { verify: best, raw }
  }).pipe(Effect.provide(keysLayer))

const main = Effect.gen(function* () {
  const dir = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "aap-audit-bench-")))
  try {
    const line = seal({
      ...(({ sensitive: _s, details, ...rest }) => ({ ...rest, details: details ?? {} }))(sampleInput(1)),
      id: "01JDQ8Z5Y3K4W6N7P8Q9R0S1T5",
      stream: "bench-01JDQ8Z5Y3K4W6N7P8Q9R0S1T4",
      seq: 1,
      ts: "2026-11-22T04:05:06.789Z",
      prevHash: "0".repeat(64)
    }).line
    const raw = yield* Effect.promise(() => rawAppendFsync(dir, line))
    for (const concurrency of [1, 32, 256]) {
      const value = yield* durableAppends(dir, concurrency)
      const target = concurrency === 256 ? 20_000 : null
      report({
        figure: `durable appends/s, JSONL, ${concurrency} concurrent appender${concurrency === 1 ? "" : "s"}`,
        unit: "events/s",
        value,
        baseline: raw,
        ratio: value / raw,
        target: target === null ? null : `>= ${target} events/s`,
        met: target === null ? null : value >= target
      })
    }
    const { verify, raw: sha } = yield* verifyBench(
      dir,
      Number(process.env.AAP_BENCH_VERIFY_RECORDS ?? "200000")
    )
    report({
      figure: "verify rate vs raw SHA-256 of the same lines",
      unit: "records/s",
      value: verify,
      baseline: sha,
      ratio: verify / sha,
      target: ">= 0.5 x raw SHA-256",
      met: verify / sha >= 0.5
    })
  } finally {
    yield* Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  }
})

Effect.runPromise(main).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
