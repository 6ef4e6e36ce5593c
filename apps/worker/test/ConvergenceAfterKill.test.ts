/**
 * Convergence after SIGKILL: a child process runs the expiry sweep against the on-disk engine
 * and is killed mid-run; the sweep started again converges to the same end state (every due
 * session expired) with no duplicate `session.expired` event.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { SessionRepository } from "@aap/agent-coordination"
import { AuditReader } from "@aap/audit"
import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { SecretStore } from "@aap/vault"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Option, Redacted } from "effect"
import * as ExpirySweep from "../src/ExpirySweep.js"
import * as Rewrap from "../src/Rewrap.js"
import { activeSession, coordination, jsonlAudit, sessionId } from "./support/stack.js"

const DUE = 150
const here = Path.dirname(new URL(import.meta.url).pathname)
const packageDir = Path.join(here, "..")

const countExpiredLines = (dir: string): number => {
  let n = 0
  const walk = (d: string) => {
    for (const entry of Fs.readdirSync(d, { withFileTypes: true })) {
      const p = Path.join(d, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (entry.name.endsWith(".jsonl") && entry.name !== "checkpoints.jsonl") {
        n += Fs.readFileSync(p, "utf8").split('"session.expired"').length - 1
      }
    }
  }
  if (Fs.existsSync(dir)) walk(dir)
  return n
}

const exited = (child: ChildProcess) =>
  Effect.async<{ code: number | null; signal: NodeJS.Signals | null }>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode }))
      return
    }
    child.once("exit", (code, signal) => resume(Effect.succeed({ code, signal })))
  })

describe("convergence after SIGKILL", () => {
  it.scopedLive(
    "the expiry sweep killed mid-run and started again expires every due session once",
    () =>
      Effect.gen(function* () {
        const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-worker-kill-"))
        const dataDir = Path.join(root, "data")
        const auditDir = Path.join(root, "audit")
        const keyringPath = Path.join(root, "keys", "keyring.json")
        const prefix = "kill"
        const keys = KeyProvider.layerLocalKeyring({ path: keyringPath })
        const stack = (instance: string) =>
          coordination(keys, jsonlAudit(auditDir, instance).pipe(Layer.provide(keys))).pipe(
            Layer.provide(DynamoDb.layerEmbedded({ dir: dataDir, tablePrefix: prefix }))
          )

        // 1. Seed due sessions on disk, then close the engine.
        yield* Effect.gen(function* () {
          const repo = yield* SessionRepository.SessionRepository
          const now = yield* DateTime.now
          for (let i = 0; i < DUE; i++) {
            yield* repo.create(activeSession(sessionId(i, 21), DateTime.subtract(now, { seconds: 5 + i })))
          }
        }).pipe(Effect.provide(stack("seed")))

        yield* Effect.log("seeded")
        // 2. A child sweeps; kill it once it has expired part of them.
        const child = spawn(
          process.execPath,
          [
            "--import",
            "tsx",
            Path.join(here, "support", "sweepChild.ts"),
            "sweep",
            dataDir,
            keyringPath,
            auditDir,
            prefix
          ],
          {
            // The worker itself, not a launcher: SIGKILL must hit the process that holds the store.
            cwd: packageDir,
            stdio: ["ignore", "pipe", "pipe"]
          }
        )
        // Never leave the process behind, whatever the assertions do.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
          })
        )
        let stderr = ""
        child.stderr?.on("data", (b: Buffer) => {
          stderr += b.toString()
        })
        let seen = 0
        for (let i = 0; i < 1200 && child.exitCode === null; i++) {
          seen = countExpiredLines(auditDir)
          if (seen >= 20) break
          yield* Effect.sleep("50 millis")
        }
        assert.isNull(child.exitCode, `the child ended before it could be killed: ${stderr}`)
        child.kill("SIGKILL")
        const end = yield* exited(child)
        assert.strictEqual(end.signal, "SIGKILL")
        const atKill = countExpiredLines(auditDir)
        assert.isBelow(atKill, DUE, "the kill landed before the sweep finished")

        yield* Effect.log(`killed at ${atKill}`)
        // 3. Start again: converge.
        yield* Effect.gen(function* () {
          const result = yield* ExpirySweep.run({ batchSize: 5 })
          const repo = yield* SessionRepository.SessionRepository
          for (let i = 0; i < DUE; i++) {
            const s = Option.getOrThrow(yield* repo.get(sessionId(i, 21)))
            assert.strictEqual(s.status, "expired")
          }
          const events = yield* Effect.flatMap(AuditReader.AuditReader, (r) =>
            r.query({ action: "session.expired", limit: 10_000 })
          )
          const perSession = new Map<string, number>()
          for (const e of events) perSession.set(e.session ?? "", (perSession.get(e.session ?? "") ?? 0) + 1)
          // No duplicates, ever.
          assert.deepStrictEqual(
            [...perSession.values()].filter((n) => n > 1),
            []
          )
          // At most the one session the kill caught between its conditional write and its audit
          // append lacks its event (the write-then-audit order of Sessions; docs/worker.md).
          const missing = DUE - perSession.size
          assert.isAtMost(missing, 1)
          // The restart did the rest of the work (give or take the one caught mid-write).
          assert.isAtLeast(result.expired, DUE - atKill - 1)
          yield* Effect.log(
            `killed after ${atKill} audited expiries; the restart expired ${result.expired}; missing events: ${missing}`
          )
          // The chain of every stream, the killed writer's included, still verifies.
          const report = yield* Effect.flatMap(AuditReader.AuditReader, (r) => r.verify())
          assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
        }).pipe(Effect.provide(stack("restart")))
        Fs.rmSync(root, { recursive: true, force: true })
      }),
    120_000
  )

  it.scopedLive(
    "the re-wrap killed mid-pass and started again moves every DEK once and audits the pass once",
    () =>
      Effect.gen(function* () {
        const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-worker-kill-rewrap-"))
        const dataDir = Path.join(root, "data")
        const auditDir = Path.join(root, "audit")
        const keyringPath = Path.join(root, "keys", "keyring.json")
        const prefix = "killrw"
        const keys = KeyProvider.layerLocalKeyring({ path: keyringPath })
        const stack = (instance: string) =>
          Layer.mergeAll(
            coordination(keys, jsonlAudit(auditDir, instance).pipe(Layer.provide(keys))),
            SecretStore.layerDynamoDb.pipe(Layer.provide(keys)),
            Rewrap.layerVaultTable
          ).pipe(Layer.provide(DynamoDb.layerEmbedded({ dir: dataDir, tablePrefix: prefix })))
        const SECRETS = 120

        // 1. Secrets on disk, then a rotation.
        yield* Effect.gen(function* () {
          const vault = yield* SecretStore.SecretStore
          for (let i = 0; i < SECRETS; i++)
            yield* vault.put(i % 2 ? "codex" : "claude", `s/${i}`, Redacted.make(`v${i}`))
          yield* Effect.flatMap(KeyProvider.KeyProvider, (p) => p.rotate())
        }).pipe(Effect.provide(stack("seed")))

        // 2. A child re-wraps; kill it after a few pages.
        const child = spawn(
          process.execPath,
          [
            "--import",
            "tsx",
            Path.join(here, "support", "sweepChild.ts"),
            "rewrap",
            dataDir,
            keyringPath,
            auditDir,
            prefix
          ],
          { cwd: packageDir, stdio: ["ignore", "pipe", "pipe"] }
        )
        // Never leave the process behind, whatever the assertions do.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
          })
        )
        let out = ""
        child.stdout?.on("data", (b: Buffer) => {
          out += b.toString()
        })
        child.stderr?.on("data", (b: Buffer) => {
          out += b.toString()
        })
        for (let i = 0; i < 1200 && child.exitCode === null; i++) {
          if (out.split("re-wrap progress").length - 1 >= 5) break
          yield* Effect.sleep("20 millis")
        }
        assert.isNull(child.exitCode, `the child ended before it could be killed: ${out}`)
        child.kill("SIGKILL")
        assert.strictEqual((yield* exited(child)).signal, "SIGKILL")

        // 3. Start again: the pass resumes from its marker and finishes.
        yield* Effect.gen(function* () {
          const result = yield* Rewrap.run({ pageSize: 4 })
          assert.isTrue(result.done)
          assert.isBelow(result.seen, SECRETS, "the restart resumed instead of starting over")
          assert.strictEqual(result.passSeen, SECRETS)
          const provider = yield* KeyProvider.KeyProvider
          const current = new Map<string, string>()
          for (const wallet of ["codex", "claude"]) {
            current.set(wallet, (yield* provider.generateDataKey({ wallet, purpose: "vault" })).keyId)
          }
          const all = yield* Effect.flatMap(Rewrap.WrappedDeks, (d) => d.page(Option.none(), 1000))
          assert.strictEqual(all.items.length, SECRETS)
          for (const d of all.items) assert.strictEqual(d.keyId, current.get(d.context.wallet))
          const vault = yield* SecretStore.SecretStore
          for (let i = 0; i < SECRETS; i++) {
            const s = yield* vault.get(i % 2 ? "codex" : "claude", `s/${i}`)
            assert.strictEqual(Redacted.value(s.value), `v${i}`)
          }
          const events = yield* Effect.flatMap(AuditReader.AuditReader, (r) =>
            r.query({ action: "key.rewrapped", limit: 100 })
          )
          assert.strictEqual(events.length, 1)
          // A further run is a no-op.
          assert.deepInclude(yield* Rewrap.run({ pageSize: 4 }), { seen: 0, moved: 0, done: true })
        }).pipe(Effect.provide(stack("restart")))
        Fs.rmSync(root, { recursive: true, force: true })
      }),
    120_000
  )
})
