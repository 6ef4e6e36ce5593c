/**
 * Crash test (DESIGN §8): a child process appends under load (16 concurrent appenders,
 * periodic checkpoints, 16 KiB segments) and prints every acknowledged `<stream> <seq>`; it is
 * killed with SIGKILL at random moments. After each kill the log is opened (torn-line
 * recovery), verified, and must contain every append the child saw acknowledged.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as esbuild from "esbuild"
import { AuditKeys, AuditReader, JsonlSink } from "../src/index.js"

const KILLS = 22

const bundleChild = Effect.promise(async () => {
  const outdir = await Fs.mkdtemp(Path.join(Os.tmpdir(), "aap-audit-child-"))
  const outfile = Path.join(outdir, "crash-child.mjs")
  await esbuild.build({
    entryPoints: [Path.join(import.meta.dirname, "fixtures", "crash-child.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    // CommonJS dependencies (the AWS SDK under key-custody) require Node built-ins
    banner: {
      js: 'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);'
    },
    logLevel: "error"
  })
  return { outdir, outfile }
})

interface Run {
  readonly acked: Map<string, number>
  readonly lines: number
}

/** Start the child, kill it after `delayMs` past its first ack (or right away), collect acks. */
const runAndKill = (
  outfile: string,
  dir: string,
  keys: readonly [string, string],
  killEarly: boolean,
  delayMs: number
) =>
  Effect.async<Run>((resume) => {
    const acked = new Map<string, number>()
    let lines = 0
    let pending = ""
    let killed = false
    const child: ChildProcess = spawn(process.execPath, [outfile, dir, keys[0], keys[1]], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    const kill = () => {
      if (!killed) {
        killed = true
        child.kill("SIGKILL")
      }
    }
    child.stdout!.setEncoding("utf8")
    child.stdout!.on("data", (data: string) => {
      pending += data
      const parts = pending.split("\n")
      pending = parts.pop()!
      for (const part of parts) {
        const [stream, seq] = part.split(" ")
        if (stream === undefined || seq === undefined) continue
        lines++
        acked.set(stream, Math.max(acked.get(stream) ?? 0, Number(seq)))
        if (lines === 1 && !killEarly) setTimeout(kill, delayMs)
      }
    })
    let stderr = ""
    child.stderr!.on("data", (data: Buffer) => {
      stderr += data.toString("utf8")
    })
    if (killEarly) setTimeout(kill, delayMs)
    const guard = setTimeout(kill, 20_000)
    child.on("close", (_code, signal) => {
      clearTimeout(guard)
      if (signal !== "SIGKILL") {
        resume(Effect.dieMessage(`child exited on its own (${signal ?? _code}): ${stderr}`))
      } else {
        resume(Effect.succeed({ acked, lines }))
      }
    })
  })

describe("crash safety (JSONL)", () => {
  it.live(
    `every acknowledged append survives SIGKILL (${KILLS} kills)`,
    () =>
      Effect.gen(function* () {
        const { outdir, outfile } = yield* bundleChild
        const dir = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "aap-audit-crash-")))
        const hmacKey = Crypto.randomBytes(32)
        const seed = Crypto.randomBytes(32)
        const keys = AuditKeys.make({
          hmacKey: Redacted.make(new Uint8Array(hmacKey)),
          signingSeed: Redacted.make(new Uint8Array(seed)),
          keyId: "crash-test"
        })
        const expected = new Map<string, number>()
        let totalAcked = 0
        let recoveredTorn = 0
        const log: Array<string> = []
        for (let i = 0; i < KILLS; i++) {
          const killEarly = i % 5 === 4
          const delayMs = killEarly ? 100 + Math.floor(Math.random() * 900) : Math.floor(Math.random() * 250)
          const run = yield* runAndKill(
            outfile,
            dir,
            [hmacKey.toString("hex"), seed.toString("hex")],
            killEarly,
            delayMs
          )
          for (const [stream, seq] of run.acked)
            expected.set(stream, Math.max(expected.get(stream) ?? 0, seq))
          totalAcked += run.lines

          const opened = yield* JsonlSink.make({ dir })
          recoveredTorn += opened.recovered.length
          const report = yield* AuditReader.make(opened.sink, keys).verify()
          yield* opened.closeAll
          log.push(`kill ${i}: ${killEarly ? "early" : "loaded"} +${delayMs}ms, ${run.lines} acks`)
          assert.isTrue(report.ok, `after kill ${i}: ${JSON.stringify(report.firstBreak)}`)
          for (const [stream, seq] of expected) {
            const found = report.streams.find((s) => s.stream === stream)
            assert.isDefined(found, `after kill ${i}: stream ${stream} is missing`)
            assert.isAtLeast(found!.lastSeq, seq, `after kill ${i}: ${stream} lost acknowledged seq ${seq}`)
          }
        }
        assert.isAbove(totalAcked, 0)
        assert.isAtLeast(expected.size, KILLS - Math.ceil(KILLS / 5))
        console.log(`crash test: ${totalAcked} acknowledged appends, ${recoveredTorn} torn tails recovered`)
        yield* Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
        yield* Effect.promise(() => Fs.rm(outdir, { recursive: true, force: true }))
      }),
    120_000
  )
})
