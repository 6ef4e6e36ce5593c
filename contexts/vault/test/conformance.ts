/**
 * The SecretStore conformance suite: every adapter runs it (memory, dynalite in memory,
 * dynalite on disk).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, type Layer, Redacted } from "effect"
import { SecretStore } from "../src/index.js"

const CANARY = "canary-7f3e9a-DO-NOT-LOG"

const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : `not a failure: ${exit._tag}`

const secret = (value: string) => Redacted.make(value)

export const conformance = <E>(name: string, layer: Layer.Layer<SecretStore.SecretStore, E>) =>
  describe(`SecretStore conformance: ${name}`, () => {
    it.layer(layer, { timeout: 60_000 })((it) => {
      it.effect("put writes versions 1, 2, 3; get reads the latest or a given version", () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          for (const [i, value] of ["one", "two", "three"].entries()) {
            const written = yield* store.put("w-basic", "openrouter/api-key", secret(value))
            assert.strictEqual(written.version, i + 1)
            assert.strictEqual(written.name, "openrouter/api-key")
          }
          const latest = yield* store.get("w-basic", "openrouter/api-key")
          assert.strictEqual(latest.version, 3)
          assert.strictEqual(Redacted.value(latest.value), "three")
          const first = yield* store.get("w-basic", "openrouter/api-key", 1)
          assert.strictEqual(Redacted.value(first.value), "one")
          assert.strictEqual(first.version, 1)
        })
      )

      it.effect("a missing secret or version is SecretNotFound", () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          assert.strictEqual(failureTag(yield* Effect.exit(store.get("w-missing", "nope"))), "SecretNotFound")
          yield* store.put("w-missing", "there", secret("v"))
          const exit = yield* Effect.exit(store.get("w-missing", "there", 2))
          assert.strictEqual(failureTag(exit), "SecretNotFound")
          assert.isTrue(Exit.isFailure(exit) && JSON.stringify(exit.cause).includes('"version":2'))
        })
      )

      it.effect("names sharing a prefix are distinct secrets", () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          yield* store.put("w-prefix", "openrouter", secret("a"))
          yield* store.put("w-prefix", "openrouter/api-key", secret("b"))
          yield* store.put("w-prefix", "openrouter/api-key2", secret("c"))
          yield* store.put("w-prefix", "openrouter/api-key2", secret("d"))
          assert.strictEqual(Redacted.value((yield* store.get("w-prefix", "openrouter")).value), "a")
          const b = yield* store.get("w-prefix", "openrouter/api-key")
          assert.deepStrictEqual([b.version, Redacted.value(b.value)], [1, "b"])
          const d = yield* store.get("w-prefix", "openrouter/api-key2")
          assert.deepStrictEqual([d.version, Redacted.value(d.value)], [2, "d"])
        })
      )

      it.effect("wallets are isolated", () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          yield* store.put("w-a", "token", secret("for-a"))
          assert.strictEqual(failureTag(yield* Effect.exit(store.get("w-b", "token"))), "SecretNotFound")
          assert.deepStrictEqual(yield* store.list("w-b"), [])
        })
      )

      it.effect("list gives names, versions and timestamps, never values", () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          yield* store.put("w-list", "b/second", secret(CANARY))
          yield* store.put("w-list", "a-first", secret(CANARY))
          yield* store.put("w-list", "a-first", secret(`${CANARY}-2`))
          const list = yield* store.list("w-list")
          assert.deepStrictEqual(
            list.map((s) => [s.name, s.version, s.versions]),
            [
              ["a-first", 2, 2],
              ["b/second", 1, 1]
            ]
          )
          for (const summary of list) {
            assert.instanceOf(summary.createdAt, Date)
            assert.isTrue(summary.updatedAt.getTime() >= summary.createdAt.getTime())
          }
          assert.notInclude(JSON.stringify(list), CANARY)
          assert.notInclude(String(list), CANARY)
        })
      )

      it.effect(
        "delete writes a tombstone: the secret and its older versions are gone; a new put starts over",
        () =>
          Effect.gen(function* () {
            const store = yield* SecretStore.SecretStore
            yield* store.put("w-del", "k", secret("v1"))
            yield* store.put("w-del", "k", secret("v2"))
            yield* store.put("w-del", "other", secret("stays"))
            const tombstone = yield* store.delete("w-del", "k")
            assert.strictEqual(tombstone.version, 3)
            assert.strictEqual(failureTag(yield* Effect.exit(store.get("w-del", "k"))), "SecretNotFound")
            assert.strictEqual(failureTag(yield* Effect.exit(store.get("w-del", "k", 1))), "SecretNotFound")
            assert.strictEqual(failureTag(yield* Effect.exit(store.get("w-del", "k", 3))), "SecretNotFound")
            assert.strictEqual(failureTag(yield* Effect.exit(store.delete("w-del", "k"))), "SecretNotFound")
            assert.strictEqual(
              failureTag(yield* Effect.exit(store.delete("w-del", "never"))),
              "SecretNotFound"
            )
            assert.deepStrictEqual(
              (yield* store.list("w-del")).map((s) => s.name),
              ["other"]
            )
            const again = yield* store.put("w-del", "k", secret("v4"))
            assert.strictEqual(again.version, 4)
            assert.strictEqual(Redacted.value((yield* store.get("w-del", "k")).value), "v4")
            assert.strictEqual(failureTag(yield* Effect.exit(store.get("w-del", "k", 2))), "SecretNotFound")
            const listed = (yield* store.list("w-del")).find((s) => s.name === "k")
            assert.deepStrictEqual([listed?.version, listed?.versions], [4, 1])
          })
      )

      it.effect("50 concurrent puts of one name yield 50 distinct versions, none lost", () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          const written = yield* Effect.all(
            Array.from({ length: 50 }, (_, i) => store.put("w-race", "hot", secret(`value-${i}`))),
            { concurrency: "unbounded" }
          )
          const versions = written.map((w) => w.version).sort((a, b) => a - b)
          assert.deepStrictEqual(
            versions,
            Array.from({ length: 50 }, (_, i) => i + 1)
          )
          const latest = yield* store.get("w-race", "hot")
          assert.strictEqual(latest.version, 50)
          const values = new Set<string>()
          for (const w of written) {
            values.add(Redacted.value((yield* store.get("w-race", "hot", w.version)).value))
          }
          assert.strictEqual(values.size, 50)
          const byVersion = new Map(written.map((w, i) => [w.version, `value-${i}`]))
          assert.strictEqual(Redacted.value(latest.value), byVersion.get(50))
        })
      )

      it.effect(
        "values up to 64 KiB (UTF-8 bytes); larger is SecretTooLarge, empty is InvalidSecretValue",
        () =>
          Effect.gen(function* () {
            const store = yield* SecretStore.SecretStore
            const max = "x".repeat(65_535) + "y"
            yield* store.put("w-size", "max", secret(max))
            assert.strictEqual(Redacted.value((yield* store.get("w-size", "max")).value), max)
            const multibyte = "é".repeat(20_000)
            yield* store.put("w-size", "utf8", secret(multibyte))
            assert.strictEqual(Redacted.value((yield* store.get("w-size", "utf8")).value), multibyte)
            const tooLarge = yield* Effect.exit(store.put("w-size", "big", secret("é".repeat(32_769))))
            assert.strictEqual(failureTag(tooLarge), "SecretTooLarge")
            assert.strictEqual(
              failureTag(yield* Effect.exit(store.put("w-size", "e", secret("")))),
              "InvalidSecretValue"
            )
          })
      )

      it.effect("wallets, names and versions are validated with typed errors", () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          const badWallets = ["", "a#b", "a..b", "-lead", "has space", "w/x", "x".repeat(129), "é"]
          for (const wallet of badWallets) {
            assert.strictEqual(
              failureTag(yield* Effect.exit(store.put(wallet, "n", secret("v")))),
              "InvalidWallet"
            )
            assert.strictEqual(failureTag(yield* Effect.exit(store.get(wallet, "n"))), "InvalidWallet")
            assert.strictEqual(failureTag(yield* Effect.exit(store.list(wallet))), "InvalidWallet")
            assert.strictEqual(failureTag(yield* Effect.exit(store.delete(wallet, "n"))), "InvalidWallet")
          }
          const badNames = [
            "",
            "a#b",
            "../etc",
            "a/../b",
            "a..b",
            "a//b",
            "/a",
            "a/",
            ".",
            "a/./b",
            "sp ace",
            "x".repeat(257)
          ]
          for (const name of badNames) {
            assert.strictEqual(
              failureTag(yield* Effect.exit(store.put("w-valid", name, secret("v")))),
              "InvalidSecretName"
            )
            assert.strictEqual(
              failureTag(yield* Effect.exit(store.get("w-valid", name))),
              "InvalidSecretName"
            )
            assert.strictEqual(
              failureTag(yield* Effect.exit(store.delete("w-valid", name))),
              "InvalidSecretName"
            )
          }
          for (const version of [0, -1, 1.5, 1_000_000_000, Number.NaN]) {
            assert.strictEqual(
              failureTag(yield* Effect.exit(store.get("w-valid", "n", version))),
              "InvalidSecretVersion"
            )
          }
          for (const name of ["a", "openrouter/api-key", "A.b_c-d/e.f", ".env", "x".repeat(256)]) {
            yield* store.put("w-valid", name, secret("ok"))
          }
        })
      )

      it.effect("no error or written result carries the value", () =>
        Effect.gen(function* () {
          const store = yield* SecretStore.SecretStore
          const results = [
            yield* Effect.exit(store.put("w-canary", "n", secret(CANARY))),
            yield* Effect.exit(store.put("w-canary", "bad#name", secret(CANARY))),
            yield* Effect.exit(store.put("w-canary", "big", secret(CANARY.repeat(5_000)))),
            yield* Effect.exit(store.get("w-canary", "n"))
          ]
          for (const result of results) {
            assert.notInclude(JSON.stringify(result), CANARY)
            assert.notInclude(String(result), CANARY)
          }
        })
      )
    })
  })
