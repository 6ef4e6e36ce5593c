import { SessionRepository } from "@aap/agent-coordination"
import { DynamoDb } from "@aap/local-stack"
import {
  DeleteRolePolicyCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListRolePoliciesCommand,
  NoSuchEntityException,
  PutRolePolicyCommand
} from "@aws-sdk/client-iam"
import { assert, describe, it } from "@effect/vitest"
import { mockClient } from "aws-sdk-client-mock"
import { DateTime, Effect, FastCheck, Layer, Option } from "effect"
import * as StsDenyList from "../src/StsDenyList.js"
import * as WorkerMetrics from "../src/WorkerMetrics.js"
import { activeSession, coordination, freshTables, memoryKeys, sessionId } from "./support/stack.js"

const t0 = DateTime.unsafeMake("2026-11-22T05:00:00.000Z")
const entry = (n: number, revokedSecondsAgo = n): StsDenyList.Entry => ({
  session: sessionId(n, 1),
  revokedAt: DateTime.subtract(t0, { seconds: revokedSecondsAgo }),
  expiresAt: DateTime.add(t0, { minutes: 30 })
})

const iamWith = () => {
  const client = new IAMClient({
    region: "us-east-1",
    credentials: { accessKeyId: "x", secretAccessKey: "y" }
  })
  const mock = mockClient(client)
  return { client, mock, layer: Layer.succeed(StsDenyList.Iam, { client }) }
}

const otherPolicy = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::memory" }]
})

describe("StsDenyList.plan", () => {
  it.effect("lists every revoked session when they fit, sorted, as one Deny on the aap_session tag", () =>
    Effect.gen(function* () {
      const p = yield* StsDenyList.plan("r", [entry(2), entry(1)], 10_240)
      const expected = JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "AapRevokedSessions",
            Effect: "Deny",
            Action: "*",
            Resource: "*",
            Condition: {
              StringEquals: { "aws:PrincipalTag/aap_session": [sessionId(1, 1), sessionId(2, 1)].sort() }
            }
          }
        ]
      })
      assert.strictEqual(Option.getOrThrow(p.document), expected)
      assert.deepStrictEqual(p.overflowed, [])
      assert.isTrue(Option.isNone(p.issuedBefore))
    })
  )

  it.effect("nothing to deny: no document", () =>
    Effect.map(StsDenyList.plan("r", [], 10_240), (p) => assert.isTrue(Option.isNone(p.document)))
  )

  it.effect(
    "overflow keeps the most recent revocations and denies tokens issued before the newest dropped one",
    () =>
      Effect.gen(function* () {
        const entries = Array.from({ length: 400 }, (_, i) => entry(i, i * 10 + 0.5))
        const p = yield* StsDenyList.plan("r", entries, 10_240)
        const doc = Option.getOrThrow(p.document)
        assert.isAtMost(StsDenyList.policySize(doc), 10_240)
        assert.isAbove(p.overflowed.length, 0)
        assert.strictEqual(p.listed.length + p.overflowed.length, 400)
        // Listed are exactly the most recent ones (smallest i).
        const listedIdx = p.listed.map((s) => entries.findIndex((e) => e.session === s)).sort((a, b) => a - b)
        assert.deepStrictEqual(
          listedIdx,
          Array.from({ length: p.listed.length }, (_, i) => i)
        )
        // Cut-off: the newest dropped revocation, rounded up to the second.
        const newestDropped = entries[p.listed.length]
        const expectedCut = new Date(
          Math.ceil(DateTime.toEpochMillis(newestDropped?.revokedAt ?? t0) / 1000) * 1000
        )
          .toISOString()
          .replace(".000Z", "Z")
        assert.strictEqual(Option.getOrThrow(p.issuedBefore), expectedCut)
        const parsed = JSON.parse(doc)
        assert.deepStrictEqual(parsed.Statement[1], {
          Sid: "AapRevokedBefore",
          Effect: "Deny",
          Action: "*",
          Resource: "*",
          Condition: {
            DateLessThan: { "aws:TokenIssueTime": expectedCut },
            StringLike: { "aws:PrincipalTag/aap_session": "ses_*" }
          }
        })
        // One more listed entry would not fit.
        assert.isAbove(StsDenyList.policySize(doc) + 33, 10_240 - 33)
      })
  )

  it.effect("never exceeds the budget, never loses a session (property)", () =>
    Effect.sync(() =>
      FastCheck.assert(
        FastCheck.property(
          FastCheck.integer({ min: 0, max: 600 }),
          FastCheck.integer({ min: 600, max: 10_240 }),
          (count, budget) => {
            const entries = Array.from({ length: count }, (_, i) => entry(i, (i * 7919) % 5000))
            const p = Effect.runSync(Effect.either(StsDenyList.plan("r", entries, budget)))
            if (p._tag === "Left") return budget < 400
            const doc = Option.getOrElse(p.right.document, () => "")
            return (
              StsDenyList.policySize(doc) <= budget &&
              new Set([...p.right.listed, ...p.right.overflowed]).size === count &&
              (p.right.overflowed.length === 0) === Option.isNone(p.right.issuedBefore)
            )
          }
        ),
        { numRuns: 200 }
      )
    )
  )

  it.effect("a budget too small even for the cut-off is a typed error", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(
        StsDenyList.plan(
          "r",
          Array.from({ length: 50 }, (_, i) => entry(i)),
          100
        )
      )
      assert.strictEqual(e._tag, "PolicyBudgetExceeded")
      assert.strictEqual(e.available, 100)
    })
  )
})

describe("StsDenyList.syncRole at the IAM SDK boundary", () => {
  const arn = "arn:aws:iam::123456789012:role/aap/aap-memory"

  it.effect("puts the policy with exact inputs, budgeting for the role's other inline policies", () =>
    Effect.gen(function* () {
      const iam = iamWith()
      iam.mock.on(ListRolePoliciesCommand).resolves({ PolicyNames: ["memory-access"], IsTruncated: false })
      iam.mock.on(GetRolePolicyCommand, { RoleName: "aap-memory", PolicyName: "memory-access" }).resolves({
        RoleName: "aap-memory",
        PolicyName: "memory-access",
        PolicyDocument: encodeURIComponent(otherPolicy)
      })
      iam.mock.on(PutRolePolicyCommand).resolves({})
      const r = yield* StsDenyList.syncRole(arn, [entry(1)]).pipe(
        Effect.provide(Layer.merge(iam.layer, WorkerMetrics.layer))
      )
      assert.deepStrictEqual(r, { role: "aap-memory", listed: 1, overflowed: 0, action: "put" })
      assert.deepStrictEqual(iam.mock.commandCalls(ListRolePoliciesCommand)[0]?.args[0].input, {
        RoleName: "aap-memory"
      })
      const puts = iam.mock.commandCalls(PutRolePolicyCommand)
      assert.strictEqual(puts.length, 1)
      assert.deepStrictEqual(puts[0]?.args[0].input, {
        RoleName: "aap-memory",
        PolicyName: "aap-revoked-sessions",
        PolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "AapRevokedSessions",
              Effect: "Deny",
              Action: "*",
              Resource: "*",
              Condition: { StringEquals: { "aws:PrincipalTag/aap_session": [sessionId(1, 1)] } }
            }
          ]
        })
      })
    })
  )

  it.effect("the other policies' size shrinks the budget: overflow is handled, not sent to IAM to fail", () =>
    Effect.gen(function* () {
      const iam = iamWith()
      const big = JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${"b".repeat(9000)}` }]
      })
      iam.mock.on(ListRolePoliciesCommand).resolves({ PolicyNames: ["big"], IsTruncated: false })
      iam.mock.on(GetRolePolicyCommand).resolves({ PolicyDocument: encodeURIComponent(big) })
      iam.mock.on(PutRolePolicyCommand).resolves({})
      const entries = Array.from({ length: 60 }, (_, i) => entry(i))
      const r = yield* StsDenyList.syncRole(arn, entries).pipe(
        Effect.provide(Layer.merge(iam.layer, WorkerMetrics.layer))
      )
      assert.isAbove(r.overflowed, 0)
      const doc = iam.mock.commandCalls(PutRolePolicyCommand)[0]?.args[0].input.PolicyDocument ?? ""
      assert.isAtMost(StsDenyList.policySize(doc) + StsDenyList.policySize(big), 10_240)
    })
  )

  it.effect("an unchanged policy is not written again (idempotent)", () =>
    Effect.gen(function* () {
      const iam = iamWith()
      const p = yield* StsDenyList.plan("aap-memory", [entry(1), entry(2)], 10_240)
      iam.mock.on(ListRolePoliciesCommand).resolves({ PolicyNames: ["aap-revoked-sessions"] })
      iam.mock.on(GetRolePolicyCommand).resolves({
        PolicyDocument: encodeURIComponent(JSON.stringify(JSON.parse(Option.getOrThrow(p.document)), null, 2))
      })
      const r = yield* StsDenyList.syncRole(arn, [entry(2), entry(1)]).pipe(
        Effect.provide(Layer.merge(iam.layer, WorkerMetrics.layer))
      )
      assert.strictEqual(r.action, "unchanged")
      assert.strictEqual(iam.mock.commandCalls(PutRolePolicyCommand).length, 0)
    })
  )

  it.effect("nothing left to deny deletes the policy; an already missing one is fine", () =>
    Effect.gen(function* () {
      const iam = iamWith()
      iam.mock.on(ListRolePoliciesCommand).resolves({ PolicyNames: ["aap-revoked-sessions"] })
      iam.mock
        .on(GetRolePolicyCommand)
        .resolves({ PolicyDocument: encodeURIComponent('{"Version":"2012-10-17","Statement":[]}') })
      iam.mock
        .on(DeleteRolePolicyCommand)
        .rejects(new NoSuchEntityException({ message: "gone", $metadata: {} }))
      const r = yield* StsDenyList.syncRole(arn, []).pipe(
        Effect.provide(Layer.merge(iam.layer, WorkerMetrics.layer))
      )
      assert.strictEqual(r.action, "delete")
      assert.deepStrictEqual(iam.mock.commandCalls(DeleteRolePolicyCommand)[0]?.args[0].input, {
        RoleName: "aap-memory",
        PolicyName: "aap-revoked-sessions"
      })
    })
  )

  it.effect("an IAM failure is a typed error naming the operation and role", () =>
    Effect.gen(function* () {
      const iam = iamWith()
      iam.mock
        .on(ListRolePoliciesCommand)
        .rejects(Object.assign(new Error("denied"), { name: "AccessDenied" }))
      const e = yield* Effect.flip(
        StsDenyList.syncRole(arn, [entry(1)]).pipe(
          Effect.provide(Layer.merge(iam.layer, WorkerMetrics.layer))
        )
      )
      assert.deepInclude(e, {
        _tag: "IamError",
        operation: "ListRolePolicies",
        role: "aap-memory",
        code: "AccessDenied"
      })
    })
  )
})

describe("StsDenyList.run over the coordination table", () => {
  it.live(
    "lists revoked unexpired Class A sessions per role, prunes expired ones, cleans roles with none",
    () =>
      Effect.gen(function* () {
        const shared = yield* DynamoDb.DynamoDb
        const shape = freshTables(shared)
        const iam = iamWith()
        iam.mock.on(ListRolePoliciesCommand, { RoleName: "aap-memory" }).resolves({ PolicyNames: [] })
        iam.mock
          .on(ListRolePoliciesCommand, { RoleName: "aap-reports" })
          .resolves({ PolicyNames: ["aap-revoked-sessions"] })
        iam.mock.on(GetRolePolicyCommand).resolves({
          PolicyDocument: encodeURIComponent(
            '{"Version":"2012-10-17","Statement":[{"Sid":"AapRevokedSessions","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/aap_session":["ses_old"]}}}]}'
          )
        })
        iam.mock.on(PutRolePolicyCommand).resolves({})
        iam.mock.on(DeleteRolePolicyCommand).resolves({})
        yield* Effect.gen(function* () {
          const repo = yield* SessionRepository.SessionRepository
          const now = yield* DateTime.now
          const revoked = (n: number, capability: string, expiresIn: number) => {
            const s = activeSession(sessionId(n, 9), DateTime.add(now, { seconds: expiresIn }), {
              capability
            })
            return {
              ...s,
              status: "revoked" as const,
              version: 3,
              updatedAt: DateTime.subtract(now, { seconds: 60 }),
              ended: {
                by: { type: "operator" as const, id: "alice" },
                at: DateTime.subtract(now, { seconds: 60 })
              }
            }
          }
          yield* repo.create(revoked(1, "memory-s3", 600)) // listed
          yield* repo.create(revoked(2, "memory-s3", 900)) // listed
          yield* repo.create(revoked(3, "memory-s3", -5)) // its grant ran out: pruned
          yield* repo.create(revoked(4, "openrouter-chat", 600)) // Class B: not on any role
          yield* repo.create(
            activeSession(sessionId(5, 9), DateTime.add(now, { seconds: 600 }), { capability: "reports-s3" })
          )
          const results = yield* StsDenyList.run()
          assert.deepStrictEqual(
            results.map((r) => [r.role, r.action, r.listed]),
            [
              ["aap-reports", "delete", 0],
              ["aap-memory", "put", 2]
            ]
          )
          const doc = JSON.parse(
            iam.mock.commandCalls(PutRolePolicyCommand)[0]?.args[0].input.PolicyDocument ?? "{}"
          )
          assert.deepStrictEqual(
            doc.Statement[0].Condition.StringEquals["aws:PrincipalTag/aap_session"],
            [sessionId(1, 9), sessionId(2, 9)].sort()
          )
          // Second run: same state, nothing written for aap-memory beyond what IAM now holds.
          iam.mock
            .on(ListRolePoliciesCommand, { RoleName: "aap-memory" })
            .resolves({ PolicyNames: ["aap-revoked-sessions"] })
          iam.mock.on(GetRolePolicyCommand, { RoleName: "aap-memory" }).resolves({
            PolicyDocument: encodeURIComponent(JSON.stringify(doc))
          })
          iam.mock.on(ListRolePoliciesCommand, { RoleName: "aap-reports" }).resolves({ PolicyNames: [] })
          const again = yield* StsDenyList.run()
          assert.deepStrictEqual(
            again.map((r) => r.action),
            ["unchanged", "unchanged"]
          )
          assert.strictEqual(iam.mock.commandCalls(PutRolePolicyCommand).length, 1)
        }).pipe(
          Effect.provide(Layer.merge(coordination(memoryKeys), iam.layer)),
          Effect.provideService(DynamoDb.DynamoDb, shape)
        )
      }).pipe(Effect.provide(DynamoDb.layerEmbedded()))
  )
})
