import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Option } from "effect"
import * as ProxyLive from "../../src/proxy/ProxyLive.js"

const read = (env: Record<string, string>) =>
  Effect.exit(
    ProxyLive.settings.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

describe("proxy settings (AAP_PROXY_*)", () => {
  it.effect("defaults", () =>
    Effect.gen(function* () {
      const exit = yield* read({})
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) {
        assert.isTrue(Option.isNone(exit.value.publicUrl))
        assert.strictEqual(exit.value.maxRequestsPerSession, 10_000)
        assert.strictEqual(exit.value.maxBytesPerSession, 1024 * 1024 * 1024)
        assert.isTrue(Option.isNone(exit.value.upstreamCa))
      }
    })
  )

  it.effect("reads the values and the CA file", () =>
    Effect.gen(function* () {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-proxy-cfg-"))
      const ca = Path.join(dir, "ca.pem")
      Fs.writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
      const exit = yield* read({
        AAP_PROXY_PUBLIC_URL: "https://aap.example.org/",
        AAP_PROXY_MAX_REQUESTS: "5",
        AAP_PROXY_MAX_BYTES: "1000",
        AAP_PROXY_UPSTREAM_CA_FILE: ca
      })
      Fs.rmSync(dir, { recursive: true, force: true })
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) {
        assert.deepStrictEqual(exit.value.publicUrl, Option.some("https://aap.example.org"))
        assert.strictEqual(exit.value.maxRequestsPerSession, 5)
        assert.strictEqual(exit.value.maxBytesPerSession, 1000)
        assert.isTrue(Option.isSome(exit.value.upstreamCa))
      }
    })
  )

  it.effect("names every bad value", () =>
    Effect.gen(function* () {
      const exit = yield* read({
        AAP_PROXY_PUBLIC_URL: "ftp://x",
        AAP_PROXY_MAX_REQUESTS: "0",
        AAP_PROXY_UPSTREAM_CA_FILE: "/nonexistent/ca.pem"
      })
      assert.isTrue(Exit.isFailure(exit))
      const text = String(Exit.isFailure(exit) ? exit.cause : "")
      assert.include(text, "AAP_PROXY_PUBLIC_URL")
      assert.include(text, "AAP_PROXY_MAX_REQUESTS")
      assert.include(text, "AAP_PROXY_UPSTREAM_CA_FILE")
    })
  )
})
