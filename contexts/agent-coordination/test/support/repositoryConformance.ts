import { SystemKeys } from "@aap/key-custody"
import { assert, layer } from "@effect/vitest"
import { DateTime, Effect, Either, Layer, Option } from "effect"
import * as Store from "../../src/CoordinationStore.js"
import * as IdentityRepository from "../../src/IdentityRepository.js"
import * as Session from "../../src/Session.js"
import * as SessionRepository from "../../src/SessionRepository.js"

const uid = () => Math.random().toString(36).slice(2, 10)
const t0 = DateTime.unsafeMake("2026-11-22T10:00:00.000Z")
const at = (s: number) => DateTime.add(t0, { seconds: s })

const newSession = (agent: string, requiredApprovals: number, created = t0) =>
  Effect.map(
    Session.makeId,
    (id) =>
      Session.create(
        {
          id,
          agent,
          wallet: agent,
          capability: "cap",
          tier: requiredApprovals > 0 ? "high" : "low",
          ttlSeconds: 600,
          breakGlass: false,
          requiredApprovals,
          approvalWindowSeconds: 300
        },
        created
      ).session
  )

/** Rewrites a stored item directly, as someone with table access would (keeps its MAC). */
const edit = (pk: string, sk: string, f: (item: Store.Item) => Store.Item) =>
  Effect.gen(function* () {
    const store = yield* Store.CoordinationStore
    const item = Option.getOrThrow(yield* store.get(pk, sk))
    const next = f(item)
    yield* store.put(next, Store.atVersion(item.version))
  })

/** The repositories' contract (keys, conditions, indexes, integrity), run against every store adapter. */
export const conformance = (name: string, store: Layer.Layer<Store.CoordinationStore, unknown>) =>
  layer(
    Layer.mergeAll(SessionRepository.layer, IdentityRepository.layer).pipe(
      Layer.provideMerge(store),
      Layer.provideMerge(SystemKeys.layerMemory)
    ),
    { excludeTestServices: true, timeout: "60 seconds" }
  )(`Repository conformance: ${name}`, (it) => {
    it.effect("sessions: create, get, conditional save", () =>
      Effect.gen(function* () {
        const repo = yield* SessionRepository.SessionRepository
        const s = yield* newSession(`a${uid()}`, 1)
        yield* repo.create(s)
        assert.strictEqual((yield* Effect.flip(repo.create(s)))._tag, "Conflict")
        assert.deepStrictEqual(Option.getOrThrow(yield* repo.get(s.id)), s)
        assert.isTrue(Option.isNone(yield* repo.get("ses_zzzzzzzzzzzzzzzzzzzzzzzzzz")))

        const approved = Either.getOrThrow(Session.approve(s, "alice", "ok", at(5))).session
        yield* repo.save(approved, s.version)
        const lost = Either.getOrThrow(Session.deny(s, "bob", undefined, at(6))).session
        const conflict = yield* Effect.flip(repo.save(lost, s.version))
        assert.strictEqual(conflict._tag, "Conflict")
        assert.strictEqual(conflict._tag === "Conflict" && conflict.reason, "concurrent-update")
        assert.deepStrictEqual(Option.getOrThrow(yield* repo.get(s.id)), approved)
      })
    )

    it.effect(
      "sessions: list by status returns live ones above now only; by agent with and without status",
      () =>
        Effect.gen(function* () {
          const repo = yield* SessionRepository.SessionRepository
          const agent = `a${uid()}`
          const activeNow = yield* newSession(agent, 0) // expires at +600
          const pendingNow = yield* newSession(agent, 1) // window ends at +300
          const old = yield* newSession(agent, 0, at(-1000)) // expired at -400, still stored active
          yield* Effect.forEach([activeNow, pendingNow, old], repo.create)
          const denied = Either.getOrThrow(Session.deny(pendingNow, "alice", undefined, at(1))).session

          const live = yield* repo.listByAgent(agent, "active", at(10), { limit: 50 })
          assert.deepStrictEqual(
            live.sessions.map((s) => s.id),
            [activeNow.id]
          )
          const every = yield* repo.listByAgent(agent, undefined, at(10), { limit: 50 })
          assert.strictEqual(every.sessions.length, 3)
          assert.strictEqual(yield* repo.countLive(agent, at(10), 10), 2)
          assert.strictEqual(yield* repo.countLive(agent, at(10), 1), 1)
          assert.strictEqual(yield* repo.countLive(agent, at(400), 10), 1)

          // status partitions are global; ours are among them
          const pending = yield* repo.listByStatus("pending_approval", at(10), { limit: 100 })
          assert.isTrue(pending.sessions.some((s) => s.id === pendingNow.id))
          assert.isFalse(pending.sessions.some((s) => s.status !== "pending_approval"))

          const due = yield* repo.listDue(at(10), 1000)
          assert.isTrue(due.some((s) => s.id === old.id))
          assert.isFalse(due.some((s) => s.id === activeNow.id || s.id === pendingNow.id))

          // a transition moves the session between partitions
          yield* repo.save(denied, pendingNow.version)
          const deniedList = yield* repo.listByAgent(agent, "denied", at(10), { limit: 50 })
          assert.deepStrictEqual(
            deniedList.sessions.map((s) => s.id),
            [pendingNow.id]
          )
          const stillPending = yield* repo.listByAgent(agent, "pending_approval", at(10), { limit: 50 })
          assert.strictEqual(stillPending.sessions.length, 0)
        })
    )

    it.effect("sessions: cursor pages by agent cover every session once", () =>
      Effect.gen(function* () {
        const repo = yield* SessionRepository.SessionRepository
        const agent = `a${uid()}`
        const all = yield* Effect.forEach(
          Array.from({ length: 7 }, () => 0),
          () => newSession(agent, 0)
        )
        yield* Effect.forEach(all, repo.create)
        const seen: Array<string> = []
        let cursor: string | undefined
        do {
          const page = yield* repo.listByAgent(agent, "active", at(1), { limit: 3, cursor })
          seen.push(...page.sessions.map((s) => s.id))
          cursor = Option.getOrUndefined(page.cursor)
        } while (cursor !== undefined)
        assert.deepStrictEqual([...seen].sort(), all.map((s) => s.id).sort())
      })
    )

    it.effect("sessions: an item edited in the store is Tampered", () =>
      Effect.gen(function* () {
        const repo = yield* SessionRepository.SessionRepository
        const agent = `a${uid()}`
        const s = yield* newSession(agent, 1)
        yield* repo.create(s)
        const pk = SessionRepository.pk(s.id)
        // promote the pending session to active by hand
        yield* edit(pk, "session", (i) => ({ ...i, data: { ...i.data, status: "active" } }))
        const error = yield* Effect.flip(repo.get(s.id))
        assert.strictEqual(error._tag, "Tampered")
        // listing it fails closed as well
        const listed = yield* Effect.flip(repo.listByAgent(agent, undefined, at(1), { limit: 10 }))
        assert.strictEqual(listed._tag, "Tampered")

        // re-indexing (hiding or surfacing a session) is detected too
        const s2 = yield* newSession(agent, 0)
        yield* repo.create(s2)
        yield* edit(SessionRepository.pk(s2.id), "session", (i) => ({
          ...i,
          byStatus: { pk: SessionRepository.statusPartition("pending_approval"), sk: i.byStatus!.sk }
        }))
        assert.strictEqual((yield* Effect.flip(repo.get(s2.id)))._tag, "Tampered")

        // a MAC copied from another item does not fit
        const s3 = yield* newSession(agent, 0)
        const s4 = yield* newSession(agent, 0)
        yield* Effect.forEach([s3, s4], repo.create)
        const store = yield* Store.CoordinationStore
        const mac4 = Option.getOrThrow(yield* store.get(SessionRepository.pk(s4.id), "session")).mac
        yield* edit(SessionRepository.pk(s3.id), "session", (i) => ({ ...i, mac: mac4 }))
        assert.strictEqual((yield* Effect.flip(repo.get(s3.id)))._tag, "Tampered")
      })
    )

    it.effect("rate slots: a fixed window per agent", () =>
      Effect.gen(function* () {
        const repo = yield* SessionRepository.SessionRepository
        const agent = `a${uid()}`
        const taken = yield* Effect.forEach(
          Array.from({ length: 4 }, () => 0),
          () => repo.takeSlot(agent, "rpm#1", 3, 1_900_000_000)
        )
        assert.deepStrictEqual(taken, [true, true, true, false])
        assert.isTrue(yield* repo.takeSlot(agent, "rpm#2", 3, 1_900_000_000))
      })
    )

    it.effect("tokens: create, get by hash, revoke conditionally, list by principal", () =>
      Effect.gen(function* () {
        const repo = yield* IdentityRepository.IdentityRepository
        const principal = `p${uid()}`
        const token = (n: number): IdentityRepository.TokenRecord => ({
          hash: `${uid()}${n}`.padEnd(64, "0"),
          type: "agent",
          principal,
          fingerprint: `fp${n}`,
          createdAt: at(n),
          version: 1
        })
        const a = token(1)
        const b = token(2)
        yield* Effect.forEach([a, b], repo.createToken)
        assert.strictEqual((yield* Effect.flip(repo.createToken(a)))._tag, "Conflict")
        assert.deepStrictEqual(Option.getOrThrow(yield* repo.getToken(a.hash)), a)
        const revoked = { ...a, revokedAt: at(9), revokedBy: "operator:alice", version: 2 }
        yield* repo.saveToken(revoked, 1)
        assert.strictEqual((yield* Effect.flip(repo.saveToken(revoked, 1)))._tag, "Conflict")
        const listed = yield* repo.listTokens("agent", principal)
        assert.deepStrictEqual(
          listed.map((t) => [t.fingerprint, t.revokedAt !== undefined]),
          [
            ["fp1", true],
            ["fp2", false]
          ]
        )
        assert.strictEqual((yield* repo.listTokens("operator", principal)).length, 0)
        // un-revoking by hand is Tampered
        yield* edit(IdentityRepository.tokenPk(a.hash), "token", (i) => {
          const { revokedAt: _r, revokedBy: _b, ...data } = i.data
          return { ...i, data }
        })
        assert.strictEqual((yield* Effect.flip(repo.getToken(a.hash)))._tag, "Tampered")
      })
    )

    it.effect("link codes and the bootstrap marker: conditional, MAC-checked", () =>
      Effect.gen(function* () {
        const repo = yield* IdentityRepository.IdentityRepository
        const code: IdentityRepository.LinkCodeRecord = {
          hash: uid().padEnd(64, "1"),
          agent: "codex",
          createdBy: "alice",
          createdAt: t0,
          expiresAt: at(600),
          version: 1
        }
        yield* repo.createLinkCode(code)
        assert.deepStrictEqual(Option.getOrThrow(yield* repo.getLinkCode(code.hash)), code)
        const used = { ...code, redeemedAt: at(1), version: 2 }
        yield* repo.saveLinkCode(used, 1)
        assert.strictEqual((yield* Effect.flip(repo.saveLinkCode(used, 1)))._tag, "Conflict")
        yield* edit(IdentityRepository.linkCodePk(code.hash), "link-code", (i) => ({
          ...i,
          data: { ...i.data, agent: "claude" }
        }))
        assert.strictEqual((yield* Effect.flip(repo.getLinkCode(code.hash)))._tag, "Tampered")

        assert.isTrue(Option.isNone(yield* repo.getBootstrap))
        const marker: IdentityRepository.BootstrapRecord = {
          operator: "alice",
          tokenHash: "a".repeat(64),
          createdAt: t0,
          version: 1
        }
        yield* repo.saveBootstrap(marker, undefined)
        assert.strictEqual((yield* Effect.flip(repo.saveBootstrap(marker, undefined)))._tag, "Conflict")
        const replaced = { ...marker, tokenHash: "b".repeat(64), version: 2 }
        yield* repo.saveBootstrap(replaced, 1)
        assert.deepStrictEqual(Option.getOrThrow(yield* repo.getBootstrap), replaced)
      })
    )
  })
