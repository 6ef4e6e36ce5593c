/**
 * Convergence after SIGKILL for the jobs with an external dependency: upstream revocation
 * (a loopback OpenRouter), audit shipping (s3rver behind a loopback proxy) and the STS deny
 * list (a loopback IAM). Each job runs in a child process against the on-disk engine, the
 * keyring file and the JSONL audit log (`support/jobChild.ts`), and is killed at least twice:
 *
 * 1. while the upstream holds a request it has NOT applied (the work is lost with the process);
 * 2. while the upstream holds a request it HAS applied, unanswered (the work is done, the job
 *    never heard: the window between the external effect and the job's own bookkeeping).
 *
 * The kill moment is chosen by the fake upstream (the N-th request is held, the test kills on
 * that signal), never by a sleep. The job then runs again in the test's process over the same
 * state, and the end state is checked exactly: the work done once, nothing done twice, nothing
 * lost.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { ProvisionedKeys, type Session, SessionRepository } from "@aap/agent-coordination"
import { AuditEvent, AuditLog, AuditReader, AuditSink } from "@aap/audit"
import { KeyProvider } from "@aap/key-custody"
import { Engine } from "@aap/local-stack"
import { SecretStore } from "@aap/vault"
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, DateTime, Effect, Layer, Option, Redacted, Schema, Stream } from "effect"
import * as AuditShipping from "../src/AuditShipping.js"
import * as Progress from "../src/Progress.js"
import * as StsDenyList from "../src/StsDenyList.js"
import * as UpstreamRevocation from "../src/UpstreamRevocation.js"
import * as FakeIam from "./support/fakeIam.js"
import * as FakeOpenRouter from "./support/fakeOpenRouter.js"
import * as JobStacks from "./support/jobStacks.js"
import { killWhenHeld } from "./support/killChild.js"
import * as S3Proxy from "./support/s3Proxy.js"
import { activeSession, jsonlAudit, sessionId } from "./support/stack.js"

const durable = (name: string): JobStacks.Durable & { readonly root: string } => {
  const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), `aap-worker-kill-${name}-`))
  return {
    root,
    dataDir: Path.join(root, "data"),
    keyringPath: Path.join(root, "keys", "keyring.json"),
    auditDir: Path.join(root, "audit"),
    tablePrefix: name.replace(/[^a-z]/g, "")
  }
}

const countBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string): Map<string, number> => {
  const m = new Map<string, number>()
  for (const a of items) m.set(key(a), (m.get(key(a)) ?? 0) + 1)
  return m
}

/** A revoked session, ended at `endedAt`, with the given deadline. */
const revokedSession = (
  id: string,
  expiresAt: DateTime.Utc,
  endedAt: DateTime.Utc,
  capability = "openrouter-chat"
): Session.Session => ({
  ...activeSession(id, expiresAt, { capability }),
  status: "revoked",
  version: 3,
  updatedAt: endedAt,
  ended: { by: { type: "operator", id: "alice" }, at: endedAt }
})

describe("convergence after SIGKILL (jobs with an external dependency)", () => {
  it.scopedLive(
    "upstream revocation killed twice mid-run and started again revokes every key once, audits each once",
    () =>
      Effect.gen(function* () {
        const MANAGEMENT = "sk-or-v1-mgmt-KILL-3b9d2c7e41a05f68"
        const d = durable("revocation")
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => Fs.rmSync(d.root, { recursive: true, force: true }))
        )
        const fake = yield* FakeOpenRouter.make(MANAGEMENT)
        const nowS = Math.floor(Date.now() / 1000)
        const key = (
          session: string,
          hash: string,
          expiresAt: number,
          revokedAt?: number
        ): UpstreamRevocation.ProvisionedKey => ({
          session,
          provider: "openrouter",
          hash,
          wallet: "codex",
          capability: "openrouter-chat",
          managementSecret: JobStacks.MANAGEMENT_SECRET,
          createdAt: expiresAt - 900,
          expiresAt,
          ...(revokedAt === undefined ? {} : { revokedAt })
        })
        // Due: 12 revoked sessions with two keys each (found through the revocations), 16 keys
        // whose session deadline passed (found through the records' due index). Not due: 5 keys
        // of live sessions, 3 keys revoked in an earlier life (already gone upstream).
        const revoked = Array.from({ length: 12 }, (_, i) => sessionId(i, 41))
        const ended = Array.from({ length: 16 }, (_, i) => sessionId(100 + i, 41))
        const live = Array.from({ length: 5 }, (_, i) => sessionId(200 + i, 41))
        const done = Array.from({ length: 3 }, (_, i) => sessionId(300 + i, 41))
        const due = [
          ...revoked.flatMap((s, i) => [key(s, `rev-${i}-a`, nowS + 600), key(s, `rev-${i}-b`, nowS + 600)]),
          ...ended.map((s, i) => key(s, `end-${i}`, nowS - 10 - i))
        ]
        const notDue = [
          ...live.map((s, i) => key(s, `live-${i}`, nowS + 600)),
          ...done.map((s, i) => key(s, `done-${i}`, nowS + 600, nowS - 30))
        ]
        for (const k of [...due, ...notDue]) if (k.revokedAt === undefined) fake.live.add(k.hash)

        yield* Effect.gen(function* () {
          const repo = yield* SessionRepository.SessionRepository
          const now = yield* DateTime.now
          const endedAt = DateTime.subtract(now, { seconds: 30 })
          for (const s of [...revoked, ...done])
            yield* repo.create(revokedSession(s, DateTime.add(now, { minutes: 10 }), endedAt))
          for (const s of live) yield* repo.create(activeSession(s, DateTime.add(now, { minutes: 10 })))
          const records = yield* ProvisionedKeys.ProvisionedKeys
          for (const k of [...due, ...notDue]) yield* records.record(k)
          yield* Effect.flatMap(SecretStore.SecretStore, (v) =>
            v.put("codex", JobStacks.MANAGEMENT_SECRET, Redacted.make(MANAGEMENT))
          )
        }).pipe(Effect.provide(JobStacks.revocation(d, "seed", fake.baseUrl)))

        const spec = { job: "revocation" as const, ...d, openRouter: fake.baseUrl }
        // Kill 1: the 10th DELETE is held before the provider deletes anything.
        const K1 = 10
        const first = yield* killWhenHeld(spec, (onHeld) => {
          fake.hold = { at: fake.calls.length + K1, applied: false, onHeld }
        })
        assert.isTrue(first.held, `the child did not reach DELETE #${K1}: ${first.output}`)
        assert.strictEqual(first.exit.signal, "SIGKILL")
        const hashOf = (path: string | undefined) => decodeURIComponent(path?.split("/").at(-1) ?? "")
        assert.isTrue(fake.live.has(hashOf(fake.held[0]?.path)), "held before the provider deleted it")
        // Kill 2: the 12th DELETE of the second life is applied upstream, never answered.
        const K2 = 12
        const second = yield* killWhenHeld(spec, (onHeld) => {
          fake.hold = { at: fake.calls.length + K2, applied: true, onHeld }
        })
        assert.isTrue(second.held, `the child did not reach DELETE #${K2}: ${second.output}`)
        assert.strictEqual(second.exit.signal, "SIGKILL")
        fake.hold = undefined
        const held = fake.held.map((c) => c.path)
        assert.strictEqual(held.length, 2)
        assert.notStrictEqual(held[0], held[1])
        assert.isFalse(fake.live.has(hashOf(held[1])), "held after the provider deleted it")

        yield* Effect.gen(function* () {
          const result = yield* UpstreamRevocation.run({ backoffBase: "10 millis" })
          // The two lives finished K1 - 1 and K2 - 1 keys; the restart does the rest, the key
          // held after it was applied included (its second DELETE answers 404: revoked).
          assert.deepStrictEqual(result, { revoked: due.length - (K1 - 1) - (K2 - 1), failed: 0, gaveUp: 0 })

          // Upstream: every due key gone, the others untouched.
          assert.deepStrictEqual(
            [...fake.live].sort(),
            notDue
              .filter((k) => k.revokedAt === undefined)
              .map((k) => k.hash)
              .sort()
          )
          assert.isTrue(
            fake.calls.every((c) => c.method === "DELETE" && c.authorization === `Bearer ${MANAGEMENT}`)
          )
          // Exactly one DELETE per due key, plus one repeat for each key a kill caught in
          // flight; none for keys not due. A job that re-did finished keys would show more.
          const deletes = countBy(fake.calls, (c) => c.path)
          const path = (hash: string) => `/api/v1/keys/${encodeURIComponent(hash)}`
          for (const k of due)
            assert.strictEqual(deletes.get(path(k.hash)), held.includes(path(k.hash)) ? 2 : 1, k.hash)
          for (const k of notDue) assert.isUndefined(deletes.get(path(k.hash)), k.hash)
          assert.strictEqual(fake.calls.length, due.length + 2)

          // Records: every due key marked revoked, the due index empty, the others unchanged.
          const records = yield* ProvisionedKeys.ProvisionedKeys
          for (const k of due) {
            const [stored] = (yield* records.forSession(k.session)).filter((r) => r.hash === k.hash)
            assert.isDefined(stored?.revokedAt, k.hash)
          }
          for (const k of notDue) {
            const [stored] = yield* records.forSession(k.session)
            assert.strictEqual(stored?.revokedAt, k.revokedAt, k.hash)
          }
          assert.deepStrictEqual(yield* records.due(Math.floor(Date.now() / 1000), 1000), [])

          // Audit: one `credential.revoked` success per due key over every stream (the killed
          // lives' and the restart's), none for the others; every chain still verifies.
          const events = yield* Effect.flatMap(AuditReader.AuditReader, (r) =>
            r.query({ action: "credential.revoked", limit: 10_000 })
          )
          assert.isTrue(events.every((e) => e.outcome === "success"))
          const perKey = countBy(events, (e) => `${e.session}#${String(e.details.keyHash)}`)
          assert.deepStrictEqual(
            [...perKey.entries()].sort(),
            due.map((k): [string, number] => [`${k.session}#${k.hash}`, 1]).sort()
          )
          const report = yield* Effect.flatMap(AuditReader.AuditReader, (r) => r.verify())
          assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
          assert.notInclude(JSON.stringify(events), MANAGEMENT)

          // Converged: a further run has nothing to do.
          assert.deepStrictEqual(yield* UpstreamRevocation.run({ backoffBase: "10 millis" }), {
            revoked: 0,
            failed: 0,
            gaveUp: 0
          })
          assert.strictEqual(fake.calls.length, due.length + 2)
        }).pipe(Effect.provide(JobStacks.revocation(d, "restart", fake.baseUrl)))
      }),
    60_000
  )

  it.scopedLive(
    "audit shipping killed three times mid-run and started again ships every object once, contiguous and verifiable",
    () =>
      Effect.gen(function* () {
        const d = durable("shipping")
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => Fs.rmSync(d.root, { recursive: true, force: true }))
        )
        const keys = KeyProvider.layerLocalKeyring({ path: d.keyringPath })
        const pad = (n: number) => String(n).padStart(16, "0")

        // Three streams, each with a checkpoint halfway. `b` and `c` are sealed by their writer;
        // `a` is left as a writer killed before it sealed leaves it (its final checkpoint line
        // removed), so the worker signs its head.
        const seed = (instance: string, records: number, seal: boolean) =>
          Effect.gen(function* () {
            const log = yield* AuditLog.AuditLog
            const append = (from: number, to: number) =>
              Effect.forEach(
                Array.from({ length: to - from }, (_, i) => from + i),
                (i) =>
                  log.append({
                    actor: { type: "agent", id: "codex" },
                    action: "session.requested",
                    outcome: "success",
                    details: { i, instance }
                  }),
                { concurrency: 16, discard: true }
              )
            yield* append(0, records / 2)
            yield* log.checkpoint
            yield* append(records / 2, records)
            return yield* log.stream
          }).pipe(
            Effect.provide(jsonlAudit(d.auditDir, instance).pipe(Layer.provide(keys))),
            Effect.tap((stream) =>
              Effect.sync(() => {
                if (seal) return
                const file = Path.join(d.auditDir, stream, "checkpoints.jsonl")
                const lines = Fs.readFileSync(file, "utf8")
                  .split("\n")
                  .filter((l) => l !== "")
                const kept = lines.filter((l) => (JSON.parse(l) as { final?: boolean }).final !== true)
                assert.strictEqual(kept.length, lines.length - 1)
                Fs.writeFileSync(file, kept.map((l) => `${l}\n`).join(""))
              })
            )
          )
        const streams = [
          yield* seed("a-crashed", 80, false),
          yield* seed("b-sealed", 100, true),
          yield* seed("c-sealed", 60, true)
        ]

        const s3 = yield* Engine.s3({ dir: Path.join(d.root, "s3"), buckets: [JobStacks.BUCKET] })
        const proxy = yield* S3Proxy.make(s3.endpoint)
        const spec = { job: "shipping" as const, ...d, s3: proxy.endpoint, maxRecordsPerObject: 10 }
        // Kill 1: the 6th PutObject never reaches the store.
        const first = yield* killWhenHeld(spec, (onHeld) => {
          proxy.hold = { at: 6, applied: false, onHeld }
        })
        assert.isTrue(first.held, `the child did not reach PutObject #6: ${first.output}`)
        assert.strictEqual(first.exit.signal, "SIGKILL")
        const heldBefore = proxy.held[0] ?? "?"
        assert.isFalse(proxy.stored.includes(heldBefore), "held before the store had it")
        // Kill 2: the first checkpoint object of the second life is stored, never answered
        // (the stream's checkpoint marker is written only after its last checkpoint object).
        const second = yield* killWhenHeld(spec, (onHeld) => {
          proxy.hold = { at: 1, applied: true, match: (k) => k.includes("/checkpoints/"), onHeld }
        })
        assert.isTrue(second.held, `the child did not reach a checkpoint PutObject: ${second.output}`)
        assert.strictEqual(second.exit.signal, "SIGKILL")
        // Kill 3: the 5th records object of the third life is stored, never answered (the
        // records marker is written after each object).
        const third = yield* killWhenHeld(spec, (onHeld) => {
          proxy.hold = { at: 5, applied: true, match: (k) => k.includes("/records/"), onHeld }
        })
        assert.isTrue(third.held, `the child did not reach records PutObject #5: ${third.output}`)
        assert.strictEqual(third.exit.signal, "SIGKILL")
        proxy.hold = undefined
        assert.strictEqual(proxy.held.length, 3)
        for (const k of proxy.held.slice(1))
          assert.isTrue(proxy.stored.includes(k), `${k} held after the store had it`)
        const storedBeforeRestart = proxy.stored.length

        const client = new S3Client(Engine.s3ClientConfig(s3.endpoint))
        yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
        const listAll = Effect.promise(async () => {
          const out: Array<string> = []
          let token: string | undefined
          do {
            const page = await client.send(
              new ListObjectsV2Command({
                Bucket: JobStacks.BUCKET,
                ...(token === undefined ? {} : { ContinuationToken: token })
              })
            )
            for (const o of page.Contents ?? []) out.push(o.Key ?? "")
            token = page.IsTruncated === true ? page.NextContinuationToken : undefined
          } while (token !== undefined)
          return out.sort()
        })
        const body = (key: string) =>
          Effect.promise(async () => {
            const out = await client.send(new GetObjectCommand({ Bucket: JobStacks.BUCKET, Key: key }))
            return (await out.Body?.transformToString()) ?? ""
          })

        yield* Effect.gen(function* () {
          // Another chunk size than the killed lives': a restart that trusted only its marker
          // would ship a range overlapping the one stored after the marker, under another key.
          const results = yield* AuditShipping.run({ maxRecordsPerObject: 15 })
          const sink = yield* AuditSink.AuditSink
          assert.deepStrictEqual(yield* sink.streams, [...streams].sort())
          const all = yield* listAll
          const expected: Array<string> = []
          const shipped: Array<AuditEvent.Checkpoint> = []
          for (const stream of streams) {
            const lines = (yield* sink
              .scan(stream, 1)
              .pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))).map((l) => l.line)
            const checkpoints = yield* sink.checkpoints(stream)
            const seqs = checkpoints.map((l) => (JSON.parse(l) as { seq: number }).seq)
            // One checkpoint per head: the worker signed `a` once, over both lives and the restart.
            assert.strictEqual(new Set(seqs).size, seqs.length, stream)
            assert.strictEqual(checkpoints.length, 2, stream)
            const closed = Math.max(...seqs)
            assert.strictEqual(closed, lines.length, stream)
            assert.deepInclude(
              results.find((r) => r.stream === stream),
              { shippedThrough: closed }
            )

            // Records: ranges that start at 1, touch without overlapping, end at the head, and
            // hold the stored lines byte for byte.
            const base = `audit/${stream}/`
            const ranges = all
              .filter((k) => k.startsWith(`${base}records/`))
              .map((k) => {
                const m = /\/records\/(\d{16})-(\d{16})\.jsonl$/.exec(k)
                assert.isNotNull(m, k)
                return { key: k, from: Number(m?.[1]), to: Number(m?.[2]) }
              })
              .sort((x, y) => x.from - y.from)
            let next = 1
            let content = ""
            for (const r of ranges) {
              assert.strictEqual(r.from, next, `${r.key} does not start where the previous range ended`)
              assert.isAtLeast(r.to, r.from)
              assert.strictEqual(r.key, `${base}records/${pad(r.from)}-${pad(r.to)}.jsonl`)
              next = r.to + 1
              content += yield* body(r.key)
            }
            assert.strictEqual(next, closed + 1, stream)
            assert.strictEqual(content, `${lines.join("\n")}\n`, stream)

            // Checkpoints: exactly one object per stored checkpoint line, the line itself.
            const checkpointKeys = checkpoints.map(
              (l, i) =>
                `${base}checkpoints/${pad(seqs[i] ?? 0)}-${Crypto.createHash("sha256").update(l).digest("hex").slice(0, 16)}.json`
            )
            assert.deepStrictEqual(
              all.filter((k) => k.startsWith(`${base}checkpoints/`)),
              [...checkpointKeys].sort(),
              stream
            )
            for (const [i, k] of checkpointKeys.entries()) {
              const text = yield* body(k)
              assert.strictEqual(text, checkpoints[i])
              shipped.push(Schema.decodeUnknownSync(AuditEvent.Checkpoint)(JSON.parse(text)))
            }
            expected.push(...ranges.map((r) => r.key), ...checkpointKeys)

            // The marker says everything is shipped.
            const marker = yield* Effect.flatMap(Progress.Progress, (p) =>
              p.get("audit-shipping", `stream#${stream}`)
            )
            assert.deepStrictEqual(
              Option.map(marker, (m) => m.value),
              Option.some({ records: closed, checkpoints: closed })
            )
          }
          // Nothing else in the bucket.
          assert.deepStrictEqual(all, [...expected].sort())
          // Every object was stored exactly once (no second version of a locked object), and
          // the only PutObject sent twice is the one the first kill kept from the store.
          assert.deepStrictEqual(
            [...countBy(proxy.stored, (k) => k).values()].filter((n) => n !== 1),
            []
          )
          assert.strictEqual(proxy.stored.length, all.length)
          const puts = countBy(proxy.puts, (k) => k)
          for (const [k, n] of puts) assert.strictEqual(n, k === heldBefore ? 2 : 1, k)
          // The restart uploaded exactly what was missing.
          assert.strictEqual(
            results.reduce((n, r) => n + r.objects, 0),
            all.length - storedBeforeRestart
          )
          // The shipped checkpoints are valid signatures over the chains.
          const report = yield* Effect.flatMap(AuditReader.AuditReader, (r) =>
            r.verify({ checkpoints: shipped })
          )
          assert.isTrue(report.ok, JSON.stringify(report.firstBreak))

          // Converged: a further run uploads nothing.
          const idle = yield* AuditShipping.run({ maxRecordsPerObject: 15 })
          assert.deepStrictEqual(
            idle.map((r) => r.objects),
            [0, 0, 0]
          )
          assert.strictEqual(
            proxy.puts.length,
            [...puts.values()].reduce((a, b) => a + b, 0)
          )
        }).pipe(Effect.provide(JobStacks.shipping(d, proxy.endpoint)))
      }),
    60_000
  )

  it.scopedLive(
    "the STS deny list killed twice mid-run and started again leaves exactly the revoked, unexpired sessions",
    () =>
      Effect.gen(function* () {
        const d = durable("stsdeny")
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => Fs.rmSync(d.root, { recursive: true, force: true }))
        )
        const iam = yield* FakeIam.make()
        const legacyArn = "arn:aws:iam::123456789012:role/aap-legacy"
        const reportsArn = "arn:aws:iam::123456789012:role/aap-reports"
        const memoryArn = "arn:aws:iam::123456789012:role/aap/aap-memory"
        const denyList = (sessions: ReadonlyArray<string>) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "AapRevokedSessions",
                Effect: "Deny",
                Action: "*",
                Resource: "*",
                Condition: { StringEquals: { "aws:PrincipalTag/aap_session": [...sessions].sort() } }
              }
            ]
          })
        const otherPolicy = JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::memory/*" }]
        })
        const reportsRevoked = Array.from({ length: 3 }, (_, i) => sessionId(i, 51))
        const reportsExpired = sessionId(10, 51)
        const memoryRevoked = Array.from({ length: 5 }, (_, i) => sessionId(20 + i, 51))
        const memoryExpired = [sessionId(30, 51), sessionId(31, 51)]
        const memoryActive = [sessionId(40, 51), sessionId(41, 51)]
        const classB = sessionId(50, 51)

        // IAM before the worker: a role dropped from the catalog still carries the deny policy,
        // one role has a stale list (a pruned session, a missing one), one has another policy.
        iam.roles.set("aap-legacy", new Map([[StsDenyList.POLICY_NAME, denyList([sessionId(99, 51)])]]))
        iam.roles.set(
          "aap-reports",
          new Map([[StsDenyList.POLICY_NAME, denyList([reportsRevoked[0] ?? "", reportsExpired])]])
        )
        iam.roles.set("aap-memory", new Map([["memory-access", otherPolicy]]))

        yield* Effect.gen(function* () {
          const repo = yield* SessionRepository.SessionRepository
          const now = yield* DateTime.now
          const endedAt = DateTime.subtract(now, { seconds: 60 })
          const later = DateTime.add(now, { minutes: 20 })
          const gone = DateTime.subtract(now, { seconds: 5 })
          for (const s of reportsRevoked) yield* repo.create(revokedSession(s, later, endedAt, "reports-s3"))
          yield* repo.create(revokedSession(reportsExpired, gone, endedAt, "reports-s3"))
          for (const s of memoryRevoked) yield* repo.create(revokedSession(s, later, endedAt, "memory-s3"))
          for (const s of memoryExpired) yield* repo.create(revokedSession(s, gone, endedAt, "memory-s3"))
          for (const s of memoryActive)
            yield* repo.create(activeSession(s, later, { capability: "memory-s3" }))
          yield* repo.create(revokedSession(classB, later, endedAt))
          // The worker managed the legacy role before its capability left the catalog.
          yield* Progress.set("sts-deny", "roles", { roles: [legacyArn] })
        }).pipe(Effect.provide(JobStacks.stsDeny(d, iam.endpoint)))

        const spec = { job: "sts-deny" as const, ...d, iam: iam.endpoint }
        // Kill 1: the first write (DeleteRolePolicy on the legacy role) never reaches IAM.
        const first = yield* killWhenHeld(spec, (onHeld) => {
          iam.hold = { at: iam.mutations.length + 1, applied: false, onHeld }
        })
        assert.isTrue(first.held, `the child did not reach the first IAM write: ${first.output}`)
        assert.strictEqual(first.exit.signal, "SIGKILL")
        // Kill 2: the second write of the second life (PutRolePolicy on aap-reports) is applied
        // by IAM, never answered.
        const second = yield* killWhenHeld(spec, (onHeld) => {
          iam.hold = { at: iam.mutations.length + 2, applied: true, onHeld }
        })
        assert.isTrue(second.held, `the child did not reach its second IAM write: ${second.output}`)
        assert.strictEqual(second.exit.signal, "SIGKILL")
        iam.hold = undefined
        assert.deepStrictEqual(
          iam.held.map((c) => [c.action, c.role]),
          [
            ["DeleteRolePolicy", "aap-legacy"],
            ["PutRolePolicy", "aap-reports"]
          ]
        )

        yield* Effect.gen(function* () {
          const results = yield* StsDenyList.run()
          assert.deepStrictEqual(
            results.map((r) => [r.role, r.action, r.listed, r.overflowed]),
            [
              ["aap-legacy", "unchanged", 0, 0],
              ["aap-reports", "unchanged", 3, 0],
              ["aap-memory", "put", 5, 0]
            ]
          )
          // The end state: each role's deny policy lists exactly its revoked, unexpired sessions;
          // the legacy role has none; the other inline policy is untouched.
          assert.deepStrictEqual([...(iam.roles.get("aap-legacy")?.entries() ?? [])], [])
          assert.deepStrictEqual(
            JSON.parse(iam.roles.get("aap-reports")?.get(StsDenyList.POLICY_NAME) ?? "null"),
            JSON.parse(denyList(reportsRevoked))
          )
          assert.deepStrictEqual(
            JSON.parse(iam.roles.get("aap-memory")?.get(StsDenyList.POLICY_NAME) ?? "null"),
            JSON.parse(denyList(memoryRevoked))
          )
          assert.strictEqual(iam.roles.get("aap-memory")?.get("memory-access"), otherPolicy)
          // Every change made once; the only write sent twice is the one the first kill kept
          // from IAM. A job that rewrote an unchanged policy would show a second aap-reports put.
          assert.deepStrictEqual(
            iam.applied.map((c) => [c.action, c.role]),
            [
              ["DeleteRolePolicy", "aap-legacy"],
              ["PutRolePolicy", "aap-reports"],
              ["PutRolePolicy", "aap-memory"]
            ]
          )
          assert.deepStrictEqual(
            iam.mutations.map((c) => [c.action, c.role]),
            [
              ["DeleteRolePolicy", "aap-legacy"],
              ["DeleteRolePolicy", "aap-legacy"],
              ["PutRolePolicy", "aap-reports"],
              ["PutRolePolicy", "aap-memory"]
            ]
          )
          // The SDK signed every call for IAM (the child used the real client, only re-pointed).
          assert.isTrue(iam.calls.every((c) => c.scope === "us-east-1/iam/aws4_request"))
          // The legacy role, cleaned, is no longer visited.
          const roles = yield* Effect.flatMap(Progress.Progress, (p) => p.get("sts-deny", "roles"))
          assert.deepStrictEqual(
            Option.map(roles, (e) => e.value),
            Option.some({ roles: [reportsArn, memoryArn] })
          )

          // Converged: a further run writes nothing.
          const again = yield* StsDenyList.run()
          assert.deepStrictEqual(
            again.map((r) => r.action),
            ["unchanged", "unchanged"]
          )
          assert.strictEqual(iam.mutations.length, 4)
        }).pipe(Effect.provide(JobStacks.stsDeny(d, iam.endpoint)))
      }),
    60_000
  )
})
