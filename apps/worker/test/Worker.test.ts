import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { SessionRepository } from "@aap/agent-coordination"
import { AuditKeys, AuditSink } from "@aap/audit"
import { DynamoDb } from "@aap/local-stack"
import { IAMClient, ListRolePoliciesCommand } from "@aws-sdk/client-iam"
import { assert, describe, it } from "@effect/vitest"
import { mockClient } from "aws-sdk-client-mock"
import { DateTime, Effect, Layer, Option } from "effect"
import * as StsDenyList from "../src/StsDenyList.js"
import { makeWorker, Worker } from "../src/Worker.js"
import * as WorkerHttp from "../src/WorkerHttp.js"
import {
  activeSession,
  catalogYaml,
  coordination,
  freshTables,
  memoryKeys,
  sessionId
} from "./support/stack.js"

const here = Path.dirname(new URL(import.meta.url).pathname)

describe("makeWorker", () => {
  it.scopedLive(
    "runs the jobs on their schedules; a failing job does not stop the others; /healthz and /metrics",
    () =>
      Effect.gen(function* () {
        const shared = yield* DynamoDb.DynamoDb
        const client = new IAMClient({
          region: "us-east-1",
          credentials: { accessKeyId: "x", secretAccessKey: "y" }
        })
        const iam = mockClient(client)
        iam.on(ListRolePoliciesCommand).rejects(Object.assign(new Error("no"), { name: "AccessDenied" }))
        const deps = coordination(memoryKeys).pipe(
          Layer.provideMerge(Layer.mergeAll(AuditSink.layerMemory, AuditKeys.layerEphemeral))
        )
        const worker = makeWorker({
          expiry: { every: "100 millis" },
          stsDeny: { every: "100 millis" },
          auditVerify: { every: "200 millis" }
        }).pipe(Layer.provide(Layer.succeed(StsDenyList.Iam, { client })))
        yield* Effect.gen(function* () {
          const repo = yield* SessionRepository.SessionRepository
          const now = yield* DateTime.now
          yield* repo.create(activeSession(sessionId(1, 41), DateTime.subtract(now, { seconds: 1 })))
          let status = "active"
          for (let i = 0; i < 100 && status !== "expired"; i++) {
            yield* Effect.sleep("50 millis")
            status = Option.getOrThrow(yield* repo.get(sessionId(1, 41))).status
          }
          assert.strictEqual(status, "expired")
          const w = yield* Worker
          let jobs = yield* w.status
          for (let i = 0; i < 40 && (jobs.find((j) => j.job === "sts-deny")?.failures ?? 0) < 2; i++) {
            yield* Effect.sleep("50 millis")
            jobs = yield* w.status
          }
          const byName = new Map(jobs.map((j) => [j.job, j]))
          assert.deepInclude(byName.get("sts-deny") ?? {}, {
            configured: true,
            lastError: Option.some("IamError")
          })
          assert.isAtLeast(byName.get("sts-deny")?.failures ?? 0, 2)
          assert.isAtLeast(byName.get("expiry")?.runs ?? 0, 2)
          assert.strictEqual(byName.get("expiry")?.failures, 0)
          assert.deepInclude(byName.get("revocation") ?? {}, { configured: false, runs: 0 })
          assert.deepInclude(byName.get("audit-shipping") ?? {}, { configured: false, runs: 0 })

          const listening = yield* WorkerHttp.serve({ host: "127.0.0.1", port: 0 })
          const health = yield* Effect.promise(() => fetch(`${listening.url}/healthz`))
          assert.strictEqual(health.status, 200)
          const body = (yield* Effect.promise(() => health.json())) as {
            status: string
            jobs: Array<{ job: string }>
          }
          assert.strictEqual(body.status, "ok")
          assert.deepStrictEqual(
            body.jobs.map((j) => j.job),
            ["expiry", "revocation", "sts-deny", "rewrap", "audit-shipping", "audit-verify"]
          )
          const metrics = yield* Effect.promise(() => fetch(`${listening.url}/metrics`).then((r) => r.text()))
          assert.include(metrics, "# TYPE aap_worker_sessions_expired_total counter")
          assert.include(metrics, "aap_worker_sessions_expired_total 1")
          assert.match(metrics, /aap_worker_job_runs_total\{job="sts-deny",outcome="error"\} \d+/)
          const missing = yield* Effect.promise(() => fetch(`${listening.url}/nope`))
          assert.strictEqual(missing.status, 404)
        }).pipe(
          Effect.scoped,
          Effect.provide(Layer.provideMerge(worker, deps)),
          Effect.provideService(DynamoDb.DynamoDb, freshTables(shared))
        )
      }).pipe(Effect.provide(DynamoDb.layerEmbedded()))
  )
})

describe("the standalone process (src/main.ts)", () => {
  it.scopedLive("starts from the environment, serves /healthz, stops cleanly on SIGTERM", () =>
    Effect.gen(function* () {
      const home = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-worker-main-"))
      const catalog = Path.join(home, "catalog.yaml")
      Fs.writeFileSync(catalog, catalogYaml)
      const child = spawn(process.execPath, ["--import", "tsx", Path.join(here, "..", "src", "main.ts")], {
        cwd: Path.join(here, ".."),
        env: {
          PATH: process.env.PATH,
          AAP_HOME: home,
          AAP_CATALOG: catalog,
          AAP_WORKER_LISTEN: "127.0.0.1:0",
          AAP_WORKER_STS_DENY: "off"
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
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
      let url: string | undefined
      for (let i = 0; i < 400 && url === undefined && child.exitCode === null; i++) {
        yield* Effect.sleep("50 millis")
        url = /worker listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
      }
      assert.isDefined(url, out)
      type Job = {
        job: string
        configured: boolean
        runs: number
        failures: number
        lastError: string | null
      }
      let jobs: Array<Job> = []
      for (let i = 0; i < 100; i++) {
        const health = yield* Effect.promise(() => fetch(`${url}/healthz`))
        assert.strictEqual(health.status, 200)
        jobs = ((yield* Effect.promise(() => health.json())) as { jobs: Array<Job> }).jobs
        if (jobs.filter((j) => j.configured).every((j) => j.runs >= 1)) break
        yield* Effect.sleep("100 millis")
      }
      // Every job the standalone wires ran once at start, without error, on one engine.
      assert.deepStrictEqual(
        jobs.map((j) => [j.job, j.configured, j.runs >= 1, j.failures, j.lastError]),
        [
          ["expiry", true, true, 0, null],
          ["revocation", true, true, 0, null],
          ["sts-deny", false, false, 0, null],
          ["rewrap", true, true, 0, null],
          ["audit-shipping", false, false, 0, null],
          ["audit-verify", true, true, 0, null]
        ],
        out
      )
      const exit = yield* Effect.async<number | null>((resume) => {
        child.once("exit", (code) => resume(Effect.succeed(code)))
        child.kill("SIGTERM")
      })
      assert.strictEqual(exit, 0, out)
      Fs.rmSync(home, { recursive: true, force: true })
    })
  )

  it.scopedLive("a bad value is one clear line, not a stack trace", () =>
    Effect.gen(function* () {
      const child = spawn(process.execPath, ["--import", "tsx", Path.join(here, "..", "src", "main.ts")], {
        cwd: Path.join(here, ".."),
        env: { PATH: process.env.PATH, AAP_WORKER_LISTEN: "nowhere", AAP_HOME: Os.tmpdir() },
        stdio: ["ignore", "pipe", "pipe"]
      })
      // Never leave the process behind, whatever the assertions do.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        })
      )
      let err = ""
      child.stderr?.on("data", (b: Buffer) => {
        err += b.toString()
      })
      const code = yield* Effect.async<number | null>((resume) => {
        child.once("exit", (c) => resume(Effect.succeed(c)))
      })
      assert.notStrictEqual(code, 0)
      assert.include(err, "aap worker: invalid configuration")
      assert.include(err, "AAP_WORKER_LISTEN: expected host:port")
      assert.notMatch(err, /\n\s+at /)
    })
  )
})
