/**
 * The operator CA for TLS interception (ADR 0082): `AAP_PROXY_CA_CERT` / `AAP_PROXY_CA_KEY`
 * read and checked at start with every problem named (and never the key's bytes), and the
 * leaf certificates minted from it.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Option } from "effect"
import * as Interception from "../../src/proxy/Interception.js"
import * as ProxyLive from "../../src/proxy/ProxyLive.js"
import { CA_EXTENSIONS, makeCert } from "./support.js"

const read = (env: Record<string, string>) =>
  Effect.exit(
    ProxyLive.settings.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

/** A CA certificate and its key (mode 0600) in a fresh directory; `rsa` or EC P-256. */
const makeCa = (kind: "ec" | "rsa" = "ec") => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-forward-ca-"))
  return { dir, ...makeCert(dir, "ca", "/CN=test CA", CA_EXTENSIONS, kind) }
}

const failureText = (exit: Exit.Exit<unknown, unknown>): string => {
  assert.isTrue(Exit.isFailure(exit))
  return String(Exit.isFailure(exit) ? exit.cause : "")
}

const loaded = (exit: Exit.Exit<ProxyLive.ProxySettings, unknown>): Interception.OperatorCa => {
  assert.isTrue(Exit.isSuccess(exit), Exit.isFailure(exit) ? String(exit.cause) : "")
  if (Exit.isFailure(exit) || Option.isNone(exit.value.operatorCa)) throw new Error("no operator CA")
  return exit.value.operatorCa.value
}

describe("operator CA (AAP_PROXY_CA_CERT / AAP_PROXY_CA_KEY)", () => {
  it.effect("neither set: interception off", () =>
    Effect.gen(function* () {
      const exit = yield* read({})
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) {
        assert.isTrue(Option.isNone(exit.value.operatorCa))
        assert.strictEqual(exit.value.tunnelCheckMs, 1000)
      }
    })
  )

  it.effect("one without the other is refused", () =>
    Effect.gen(function* () {
      const ca = makeCa()
      const text = failureText(yield* read({ AAP_PROXY_CA_CERT: ca.cert }))
      assert.include(text, "AAP_PROXY_CA_KEY")
      assert.include(text, "set both or neither")
      const other = failureText(yield* read({ AAP_PROXY_CA_KEY: ca.key }))
      assert.include(other, "AAP_PROXY_CA_CERT")
    })
  )

  it.effect(
    "unreadable files, a key readable by others, a non-CA certificate, a key that does not match: each named, no key bytes",
    () =>
      Effect.gen(function* () {
        const ca = makeCa()
        const keyPem = Fs.readFileSync(ca.key, "utf8")
        const keyBody = keyPem.split("\n")[1] ?? ""
        assert.isAbove(keyBody.length, 20)

        const missing = failureText(
          yield* read({ AAP_PROXY_CA_CERT: "/nonexistent/ca.pem", AAP_PROXY_CA_KEY: "/nonexistent/ca.key" })
        )
        assert.include(missing, "AAP_PROXY_CA_CERT")
        assert.include(missing, "cannot read /nonexistent/ca.pem")
        assert.include(missing, "AAP_PROXY_CA_KEY")
        assert.include(missing, "cannot read /nonexistent/ca.key")

        const open = Path.join(ca.dir, "open.key")
        Fs.writeFileSync(open, keyPem, { mode: 0o644 })
        Fs.chmodSync(open, 0o644)
        const groupReadable = failureText(yield* read({ AAP_PROXY_CA_CERT: ca.cert, AAP_PROXY_CA_KEY: open }))
        assert.include(groupReadable, "mode 644")
        assert.include(groupReadable, "chmod 600")

        const garbage = Path.join(ca.dir, "garbage.key")
        Fs.writeFileSync(garbage, "not a key", { mode: 0o600 })
        assert.include(
          failureText(yield* read({ AAP_PROXY_CA_CERT: ca.cert, AAP_PROXY_CA_KEY: garbage })),
          "holds no unencrypted PEM private key"
        )

        const notPem = Path.join(ca.dir, "not.pem")
        Fs.writeFileSync(notPem, "hello")
        assert.include(
          failureText(yield* read({ AAP_PROXY_CA_CERT: notPem, AAP_PROXY_CA_KEY: ca.key })),
          "holds no PEM X.509 certificate"
        )

        // A leaf minted by the CA is a certificate, but not a CA one.
        const good = loaded(yield* read({ AAP_PROXY_CA_CERT: ca.cert, AAP_PROXY_CA_KEY: ca.key }))
        const minter = yield* Effect.promise(() => Interception.makeMinter(good))
        const leaf = Path.join(ca.dir, "leaf.pem")
        Fs.writeFileSync(leaf, yield* Effect.promise(() => minter.certificateFor("example.org")))
        assert.include(
          failureText(yield* read({ AAP_PROXY_CA_CERT: leaf, AAP_PROXY_CA_KEY: ca.key })),
          "is not a CA certificate"
        )

        const otherCa = makeCa()
        const mismatch = failureText(
          yield* read({ AAP_PROXY_CA_CERT: ca.cert, AAP_PROXY_CA_KEY: otherCa.key })
        )
        assert.include(mismatch, "is not the private key of")

        for (const text of [missing, groupReadable, mismatch]) {
          assert.notInclude(text, keyBody)
          assert.notInclude(text, "PRIVATE KEY-----")
        }
      })
  )

  for (const kind of ["ec", "rsa"] as const) {
    it.effect(
      `${kind} CA: leaf certificates for names and IPs, issued by the CA, short-lived, serverAuth only`,
      () =>
        Effect.gen(function* () {
          const ca = makeCa(kind)
          const operatorCa = loaded(yield* read({ AAP_PROXY_CA_CERT: ca.cert, AAP_PROXY_CA_KEY: ca.key }))
          assert.strictEqual(operatorCa.keyType, kind === "ec" ? "ec-p256" : "rsa")
          assert.notInclude(String(operatorCa.keyPkcs8), "PRIVATE")
          const minter = yield* Effect.promise(() => Interception.makeMinter(operatorCa))
          const caCert = new Crypto.X509Certificate(Fs.readFileSync(ca.cert))
          for (const [host, san] of [
            ["API.Example.org", "DNS:api.example.org"],
            ["127.0.0.1", "IP Address:127.0.0.1"]
          ] as const) {
            const leaf = new Crypto.X509Certificate(yield* Effect.promise(() => minter.certificateFor(host)))
            assert.isTrue(leaf.checkIssued(caCert))
            assert.isTrue(leaf.verify(caCert.publicKey))
            assert.isFalse(leaf.ca)
            assert.strictEqual(leaf.subjectAltName, san)
            assert.include(leaf.keyUsage ?? [], "1.3.6.1.5.5.7.3.1")
            const lifetime = new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime()
            assert.isAtMost(lifetime, 25 * 3_600_000)
          }
          // Cached: the same certificate for the same host (any case).
          assert.strictEqual(
            yield* Effect.promise(() => minter.certificateFor("api.example.org")),
            yield* Effect.promise(() => minter.certificateFor("API.EXAMPLE.ORG"))
          )
        })
    )
  }
})
