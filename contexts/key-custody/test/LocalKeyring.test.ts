import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Redacted } from "effect"
import { Envelope, KeyProvider, KeyringAdmin, SystemKeys } from "../src/index.js"
import { tempDir, toHex } from "./helpers.js"

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined

const keyringIn = (dir: string) => path.join(dir, "keys", "keyring.json")
const local = (file: string) => KeyProvider.layerLocalKeyring({ path: file })
const address = { wallet: "codex", name: "openrouter/api-key", version: 1 }
const CANARY = "CANARY-local-keyring-secret"

/** Build the layer and run `use` with it, failures surfaced as values. */
const withKeyring = <A, E>(
  file: string,
  use: Effect.Effect<A, E, KeyProvider.KeyProvider | SystemKeys.SystemKeys | KeyringAdmin.KeyringAdmin>
) => Effect.exit(Effect.provide(use, local(file)))

const readJson = (file: string) => Effect.promise(() => fs.readFile(file, "utf8").then((t) => JSON.parse(t)))
const writeJson = (file: string, doc: unknown) =>
  Effect.promise(() => fs.writeFile(file, JSON.stringify(doc), { mode: 0o600 }))

describe("LocalKeyring", () => {
  it.scoped(
    "creates the keyring on first use: mode 0600 in a 0700 directory, one primary UMK, no temp files",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = keyringIn(dir)
        const exit = yield* withKeyring(
          file,
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.describe())
        )
        assert.isTrue(Exit.isSuccess(exit))
        const st = yield* Effect.promise(() => fs.stat(file))
        assert.strictEqual(st.mode & 0o777, 0o600)
        const dst = yield* Effect.promise(() => fs.stat(path.dirname(file)))
        assert.strictEqual(dst.mode & 0o777, 0o700)
        const doc = yield* readJson(file)
        assert.strictEqual(doc.format, "aap-keyring")
        assert.strictEqual(doc.primary, 1)
        assert.strictEqual(doc.umks.length, 1)
        if (Exit.isSuccess(exit)) {
          assert.strictEqual(exit.value.provider, "local-keyring")
          assert.strictEqual(exit.value.primaryKeyId, "umk-v1")
          assert.strictEqual(exit.value.location, file)
        }
        const entries = yield* Effect.promise(() => fs.readdir(path.dirname(file)))
        assert.deepStrictEqual(entries, ["keyring.json"])
      })
  )

  it.scoped("layerLocalKeyringFromHome uses $AAP_HOME/keys/keyring.json", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const exit = yield* Effect.exit(
        Effect.provide(
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.describe()),
          KeyProvider.layerLocalKeyringFromHome(dir)
        )
      )
      assert.isTrue(Exit.isSuccess(exit) && exit.value.location === path.join(dir, "keys", "keyring.json"))
    })
  )

  it.scoped("persists keys: a second process opens what the first sealed", () =>
    Effect.gen(function* () {
      const file = keyringIn(yield* tempDir)
      const sealed = yield* Effect.provide(Envelope.seal(address, Redacted.make(CANARY)), local(file))
      const opened = yield* Effect.provide(Envelope.openText(address, sealed), local(file))
      assert.strictEqual(Redacted.value(opened), CANARY)
      assert.notInclude(yield* Effect.promise(() => fs.readFile(file, "utf8")), CANARY)
    })
  )

  for (const mode of [0o640, 0o604, 0o660, 0o644, 0o666]) {
    it.scoped(`refuses a keyring with mode 0${mode.toString(8)} and says how to fix it`, () =>
      Effect.gen(function* () {
        const file = keyringIn(yield* tempDir)
        yield* withKeyring(file, Effect.void)
        yield* Effect.promise(() => fs.chmod(file, mode))
        const error = failureOf(yield* withKeyring(file, Effect.void))
        assert.strictEqual(error?._tag, "KeyringInsecure")
        assert.include(error?.message ?? "", `chmod 600 ${file}`)
        assert.include(error?.message ?? "", `0${mode.toString(8)}`)
        yield* Effect.promise(() => fs.chmod(file, 0o600))
        assert.isTrue(Exit.isSuccess(yield* withKeyring(file, Effect.void)))
      })
    )
  }

  it.scoped("refuses a keyring whose directory is group- or world-writable", () =>
    Effect.gen(function* () {
      const file = keyringIn(yield* tempDir)
      yield* withKeyring(file, Effect.void)
      yield* Effect.promise(() => fs.chmod(path.dirname(file), 0o777))
      const error = failureOf(yield* withKeyring(file, Effect.void))
      assert.strictEqual(error?._tag, "KeyringInsecure")
      assert.include(error?.message ?? "", `chmod 700 ${path.dirname(file)}`)
    })
  )

  it.scoped("a truncated keyring is KeyringUnreadable, and the message quotes none of its content", () =>
    Effect.gen(function* () {
      const file = keyringIn(yield* tempDir)
      yield* withKeyring(file, Effect.void)
      const text = yield* Effect.promise(() => fs.readFile(file, "utf8"))
      const umk = JSON.parse(text).umks[0].key as string
      for (const cut of [1, 17, Math.floor(text.length / 2), text.length - 3]) {
        yield* Effect.promise(() => fs.writeFile(file, text.slice(0, cut)))
        const error = failureOf(yield* withKeyring(file, Effect.void))
        assert.strictEqual(error?._tag, "KeyringUnreadable", `cut at ${cut}`)
        assert.include(error?.message ?? "", "truncated or corrupted")
        assert.notInclude(`${error?.message} ${JSON.stringify(error)}`, umk.slice(0, 12))
      }
      yield* Effect.promise(() => fs.writeFile(file, ""))
      const empty = failureOf(yield* withKeyring(file, Effect.void))
      assert.strictEqual(empty?._tag, "KeyringUnreadable")
      assert.include(empty?.message ?? "", "empty")
    })
  )

  it.scoped("a keyring of the wrong shape names the field, not its value", () =>
    Effect.gen(function* () {
      const file = keyringIn(yield* tempDir)
      yield* withKeyring(file, Effect.void)
      const doc = yield* readJson(file)
      yield* writeJson(file, { ...doc, umks: [{ ...doc.umks[0], key: 12345678 }] })
      const error = failureOf(yield* withKeyring(file, Effect.void))
      assert.strictEqual(error?._tag, "KeyringUnreadable")
      assert.include(error?.message ?? "", "umks.0.key")
      assert.notInclude(error?.message ?? "", "12345678")
      yield* writeJson(file, { ...doc, format: "something-else" })
      assert.strictEqual(failureOf(yield* withKeyring(file, Effect.void))?._tag, "KeyringUnreadable")
    })
  )

  it.scoped("a wrapped key altered in the file is KeyringUnreadable at load", () =>
    Effect.gen(function* () {
      const file = keyringIn(yield* tempDir)
      yield* withKeyring(
        file,
        Effect.flatMap(KeyProvider.KeyProvider, (kp) =>
          kp.generateDataKey({ wallet: "codex", purpose: "vault" })
        )
      )
      const doc = yield* readJson(file)
      const wrapped = Buffer.from(doc.wallets.codex.keks[0].wrapped, "base64")
      wrapped[3] = wrapped[3]! ^ 1
      doc.wallets.codex.keks[0].wrapped = wrapped.toString("base64")
      yield* writeJson(file, doc)
      const error = failureOf(yield* withKeyring(file, Effect.void))
      assert.strictEqual(error?._tag, "KeyringUnreadable")
      assert.include(error?.message ?? "", "local:codex:kek-v1 does not decrypt")
    })
  )

  it.scoped(
    "a missing master key version gives KeyNotFound (missing-master-key); a missing wallet key gives KeyNotFound",
    () =>
      Effect.gen(function* () {
        const file = keyringIn(yield* tempDir)
        const env = yield* Effect.provide(Envelope.seal(address, Redacted.make(CANARY)), local(file))
        yield* withKeyring(
          file,
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.rotate())
        )
        const doc = yield* readJson(file)
        // Drop UMK v1 (the one that wraps the wallet's KEK v1); the system root is under v2.
        yield* writeJson(file, { ...doc, umks: doc.umks.filter((u: { version: number }) => u.version !== 1) })
        const error = failureOf(yield* withKeyring(file, Envelope.open(address, env)))
        assert.strictEqual(error?._tag, "KeyNotFound")
        if (error?._tag === "KeyNotFound") {
          assert.strictEqual(error.reason, "missing-master-key")
          assert.strictEqual(error.keyId, "local:codex:kek-v1")
        }
        // Remove the KEK record itself: unknown key.
        doc.wallets.codex.keks = doc.wallets.codex.keks.filter((k: { version: number }) => k.version !== 1)
        yield* writeJson(file, doc)
        const error2 = failureOf(yield* withKeyring(file, Envelope.open(address, env)))
        assert.strictEqual(error2?._tag, "KeyNotFound")
        if (error2?._tag === "KeyNotFound") assert.strictEqual(error2.reason, "unknown")
      })
  )

  it.scoped(
    "rotation is persisted: UMK v2 primary, a new KEK per wallet, old envelopes open, rewrap moves DEKs",
    () =>
      Effect.gen(function* () {
        const file = keyringIn(yield* tempDir)
        const env = yield* Effect.provide(Envelope.seal(address, Redacted.make(CANARY)), local(file))
        const described = yield* Effect.provide(
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.rotate()),
          local(file)
        )
        assert.strictEqual(described.primaryKeyId, "umk-v2")
        assert.deepStrictEqual(
          described.masterKeys.map((m) => [m.keyId, m.primary]),
          [
            ["umk-v1", false],
            ["umk-v2", true]
          ]
        )
        const doc = yield* readJson(file)
        assert.strictEqual(doc.primary, 2)
        assert.strictEqual(doc.wallets.codex.current, 2)
        assert.strictEqual(doc.wallets.codex.keks[1].umk, 2)
        assert.strictEqual(doc.system.umk, 2)
        const { envelope } = yield* Effect.provide(Envelope.rewrap(address, env), local(file))
        assert.strictEqual(envelope.keyId, "local:codex:kek-v2")
        assert.strictEqual(
          Redacted.value(yield* Effect.provide(Envelope.openText(address, envelope), local(file))),
          CANARY
        )
        assert.strictEqual(
          Redacted.value(yield* Effect.provide(Envelope.openText(address, env), local(file))),
          CANARY
        )
        const entries = yield* Effect.promise(() => fs.readdir(path.dirname(file)))
        assert.deepStrictEqual(entries, ["keyring.json"])
      })
  )

  it.scoped("system keys stay the same across UMK rotation and reloads", () =>
    Effect.gen(function* () {
      const file = keyringIn(yield* tempDir)
      const fingerprint = Effect.gen(function* () {
        const keys = yield* SystemKeys.SystemKeys
        const mac = yield* keys.hmac(SystemKeys.Purpose.AuditHmac, "x")
        const integrity = yield* keys.hmac(SystemKeys.Purpose.IntegrityMac, "x")
        const signing = yield* keys.signingKey(SystemKeys.Purpose.AuditCheckpoint)
        return [mac, integrity, toHex(signing.publicKeyRaw)]
      })
      const before = yield* Effect.provide(fingerprint, local(file))
      yield* Effect.provide(
        Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.rotate()),
        local(file)
      )
      yield* Effect.provide(
        Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.rotate()),
        local(file)
      )
      const after = yield* Effect.provide(fingerprint, local(file))
      assert.deepStrictEqual(after, before)
      assert.notStrictEqual(before[0], before[1])
    })
  )

  it.scoped("two processes sharing the file: mutations re-read it, so neither loses the other's keys", () =>
    Effect.gen(function* () {
      const file = keyringIn(yield* tempDir)
      yield* withKeyring(file, Effect.void)
      const a = yield* Layer.build(local(file))
      const b = yield* Layer.build(local(file))
      const inA = <X, E>(e: Effect.Effect<X, E, KeyProvider.KeyProvider>) => Effect.provide(e, a)
      const inB = <X, E>(e: Effect.Effect<X, E, KeyProvider.KeyProvider>) => Effect.provide(e, b)
      const envA = yield* inA(Envelope.seal(address, Redacted.make("from-a")))
      yield* inA(Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.rotate()))
      // B still has revision 2 in memory; its first KEK for a new wallet must not undo A's rotation.
      const claude = { wallet: "claude", name: "t", version: 1 }
      const envB = yield* inB(Envelope.seal(claude, Redacted.make("from-b")))
      const doc = yield* readJson(file)
      assert.strictEqual(doc.primary, 2)
      assert.deepStrictEqual(Object.keys(doc.wallets).sort(), ["claude", "codex"])
      // A never saw claude's KEK: it re-reads the file on an unknown key and opens B's envelope.
      assert.strictEqual(Redacted.value(yield* inA(Envelope.openText(claude, envB))), "from-b")
      assert.strictEqual(Redacted.value(yield* inB(Envelope.openText(address, envA))), "from-a")
      const fresh = yield* Effect.provide(Envelope.openText(claude, envB), local(file))
      assert.strictEqual(Redacted.value(fresh), "from-b")
    })
  )

  it.scoped(
    "a stale lock file (older than 30 s) left by a crash does not block mutations; stray temp files are ignored",
    () =>
      Effect.gen(function* () {
        const file = keyringIn(yield* tempDir)
        yield* withKeyring(file, Effect.void)
        yield* Effect.promise(async () => {
          await fs.writeFile(`${file}.lock`, "999999\n")
          const old = new Date(Date.now() - 60_000)
          await fs.utimes(`${file}.lock`, old, old)
          await fs.writeFile(`${file}.4242.deadbeef.tmp`, "{ half a keyr")
        })
        const exit = yield* withKeyring(
          file,
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.rotate())
        )
        assert.isTrue(Exit.isSuccess(exit))
        const entries = (yield* Effect.promise(() => fs.readdir(path.dirname(file)))).sort()
        assert.deepStrictEqual(entries, ["keyring.json", "keyring.json.4242.deadbeef.tmp"])
      })
  )

  it.scoped(
    "crypto-shredding a wallet makes its secrets unrecoverable (KeyNotFound: shredded), others untouched",
    () =>
      Effect.gen(function* () {
        const file = keyringIn(yield* tempDir)
        const claude = { wallet: "claude", name: "anthropic/api-key", version: 1 }
        const [codexEnv, claudeEnv] = yield* Effect.provide(
          Effect.all([
            Envelope.seal(address, Redacted.make(CANARY)),
            Envelope.seal(claude, Redacted.make("keep"))
          ]),
          local(file)
        )
        const removed = yield* Effect.provide(
          Effect.flatMap(KeyringAdmin.KeyringAdmin, (admin) => admin.shredWallet("codex")),
          local(file)
        )
        assert.deepStrictEqual(removed, ["local:codex:kek-v1"])
        const doc = yield* readJson(file)
        assert.deepStrictEqual(doc.wallets.codex.keks, [])
        assert.strictEqual(doc.wallets.codex.shreddedThrough, 1)
        const error = failureOf(yield* withKeyring(file, Envelope.open(address, codexEnv)))
        assert.strictEqual(error?._tag, "KeyNotFound")
        if (error?._tag === "KeyNotFound") {
          assert.strictEqual(error.reason, "shredded")
          assert.include(error.message, "unrecoverable")
        }
        assert.strictEqual(
          Redacted.value(yield* Effect.provide(Envelope.openText(claude, claudeEnv), local(file))),
          "keep"
        )
        // The wallet can be used again, under a new KEK; the old secrets stay gone.
        const again = yield* Effect.provide(Envelope.seal(address, Redacted.make("new")), local(file))
        assert.strictEqual(again.keyId, "local:codex:kek-v2")
        assert.strictEqual(
          failureOf(yield* withKeyring(file, Envelope.open(address, codexEnv)))?._tag,
          "KeyNotFound"
        )
        const described = yield* Effect.provide(
          Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.describe()),
          local(file)
        )
        assert.strictEqual(described.wallets, 2)
      })
  )
})

describe("KeyProvider.layerConfig", () => {
  it.scoped("without AAP_KMS_KEY_ID it opens the local keyring under AAP_HOME", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const described = yield* Effect.provide(
        Effect.flatMap(KeyProvider.KeyProvider, (kp) => kp.describe()),
        KeyProvider.layerConfig.pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["AAP_HOME", dir]]))))
        )
      )
      assert.strictEqual(described.provider, "local-keyring")
      assert.strictEqual(described.location, path.join(dir, "keys", "keyring.json"))
    })
  )
})
