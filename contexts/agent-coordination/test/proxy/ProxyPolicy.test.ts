import { Catalog } from "@aap/catalog"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck, Redacted, Schema } from "effect"
import * as ProxyPolicy from "../../src/proxy/ProxyPolicy.js"
import * as ProxyToken from "../../src/proxy/ProxyToken.js"

const proxy = Schema.decodeUnknownSync(Catalog.BearerProxy)({
  upstream: "https://api.example.test/api",
  header: "Authorization",
  scheme: "Bearer",
  paths: ["/api/v1/chat/*", "/api/v1/models"],
  methods: ["POST", "GET"]
})

const problem = (path: string) => Either.getLeft(ProxyPolicy.checkPath(path))._tag === "Some"

describe("ProxyPolicy.checkPath", () => {
  it("accepts ordinary paths and keeps their raw form", () => {
    assert.deepStrictEqual(
      ProxyPolicy.checkPath("/v1/chat/completions"),
      Either.right({ raw: "/v1/chat/completions", decoded: "/v1/chat/completions" })
    )
    assert.deepStrictEqual(
      ProxyPolicy.checkPath("/v1/models/a%20b"),
      Either.right({ raw: "/v1/models/a%20b", decoded: "/v1/models/a b" })
    )
    assert.deepStrictEqual(
      ProxyPolicy.checkPath("/v1/chat/"),
      Either.right({ raw: "/v1/chat/", decoded: "/v1/chat/" })
    )
    assert.deepStrictEqual(ProxyPolicy.checkPath(""), Either.right({ raw: "", decoded: "" }))
  })

  const traversals = [
    "/v1/../admin",
    "/v1/./chat",
    "/..",
    "/v1/%2e%2e/admin",
    "/v1/%2E%2E/admin",
    "/v1/.%2e/admin",
    "/v1/%2e./admin",
    "/v1/%252e%252e/admin",
    "/v1/..%2fadmin",
    "/v1/chat%2f..%2fadmin",
    "/v1/chat%2F..%2Fadmin",
    "/v1/..%5cadmin",
    "/v1/..\\admin",
    "/v1/..;/admin",
    "/v1//admin",
    "//evil.test/x",
    "/v1/%00/x",
    "/v1/%zz/x",
    "/v1/chat%25%32%65%25%32%65",
    "/v1/\u0000",
    "/v1/..."
  ]
  for (const path of traversals) {
    it(`refuses ${JSON.stringify(path)}`, () => {
      assert.isTrue(problem(path))
    })
  }

  it.prop(
    "no accepted path has a decoded . or .. segment",
    [
      FastCheck.array(
        FastCheck.constantFrom(
          "a",
          ".",
          "..",
          "%2e",
          "%2E",
          "%2e%2e",
          ".%2e",
          "%2f",
          "%25",
          "b%2e",
          "v1",
          "",
          ";x"
        ),
        { maxLength: 6 }
      )
    ],
    ([parts]) => {
      const result = ProxyPolicy.checkPath(`/${parts.join("/")}`)
      if (Either.isRight(result)) {
        const segments = result.right.decoded.split("/").slice(1)
        for (const s of segments) assert.isFalse(s === "." || s === "..", result.right.decoded)
        assert.isFalse(result.right.decoded.includes("//"))
      }
    }
  )
})

describe("ProxyPolicy.decide", () => {
  it("prefixes the upstream base path and matches the allow-list on it", () => {
    const ok = ProxyPolicy.decide(proxy, "POST", "/v1/chat/completions")
    assert.isTrue(Either.isRight(ok))
    if (Either.isRight(ok)) {
      assert.strictEqual(ok.right.path, "/api/v1/chat/completions")
      assert.strictEqual(ok.right.upstream.host, "api.example.test")
      assert.strictEqual(ok.right.upstream.port, 443)
    }
    assert.isTrue(Either.isRight(ProxyPolicy.decide(proxy, "get", "/v1/models")))
  })

  it("refuses paths and methods outside the allow-list", () => {
    assert.deepStrictEqual(
      ProxyPolicy.decide(proxy, "POST", "/v1/keys"),
      Either.left({ _tag: "PathNotAllowed", path: "/api/v1/keys" })
    )
    assert.deepStrictEqual(
      ProxyPolicy.decide(proxy, "GET", "/v1/models/x"),
      Either.left({ _tag: "PathNotAllowed", path: "/api/v1/models/x" })
    )
    assert.deepStrictEqual(
      ProxyPolicy.decide(proxy, "DELETE", "/v1/models"),
      Either.left({ _tag: "MethodNotAllowed", method: "DELETE" })
    )
    assert.deepStrictEqual(
      ProxyPolicy.decide(proxy, "HEAD", "/v1/models"),
      Either.left({ _tag: "MethodNotAllowed", method: "HEAD" })
    )
    // The trailing-* pattern does not match its own parent.
    assert.deepStrictEqual(
      ProxyPolicy.decide(proxy, "POST", "/v1/chat"),
      Either.left({ _tag: "PathNotAllowed", path: "/api/v1/chat" })
    )
    assert.deepStrictEqual(
      ProxyPolicy.decide(proxy, "POST", "/v1/chat/../keys"),
      Either.left({ _tag: "BadPath", problem: "dot-segment" })
    )
  })
})

describe("ProxyPolicy headers", () => {
  const token = "aap_pxy_AAAAAAAAAAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

  it("removes hop-by-hop, Connection-named and token headers, sets Host and injects the credential", () => {
    const out = ProxyPolicy.upstreamRequestHeaders(
      {
        host: "127.0.0.1:8787",
        connection: "keep-alive, x-secret-hop",
        "x-secret-hop": "1",
        "keep-alive": "timeout=5",
        "transfer-encoding": "chunked",
        "proxy-authorization": `Bearer ${token}`,
        authorization: `Bearer ${token}`,
        "x-aap-proxy-token": token,
        "x-custom-key": token,
        "content-type": "application/json",
        accept: ["text/event-stream", "application/json"]
      },
      proxy,
      "api.example.test",
      "Bearer REAL"
    )
    assert.deepStrictEqual(out, {
      "content-type": "application/json",
      accept: ["text/event-stream", "application/json"],
      host: "api.example.test",
      authorization: "Bearer REAL"
    })
  })

  it("drops response headers that echo the secret", () => {
    const out = ProxyPolicy.downstreamResponseHeaders(
      {
        "content-type": "text/event-stream",
        "x-debug": "key=REAL-KEY",
        connection: "close",
        "set-cookie": ["a=1"]
      },
      "REAL-KEY"
    )
    assert.deepStrictEqual(out, { "content-type": "text/event-stream", "set-cookie": ["a=1"] })
  })

  it("finds the presented token in every supported place", () => {
    assert.strictEqual(ProxyPolicy.presentedToken({ authorization: `Bearer ${token}` }), token)
    assert.strictEqual(ProxyPolicy.presentedToken({ "x-api-key": token }), token)
    assert.strictEqual(ProxyPolicy.presentedToken({ "x-aap-proxy-token": token }), token)
    const basic = Buffer.from(`ses_x:${token}`).toString("base64")
    assert.strictEqual(ProxyPolicy.presentedToken({ "proxy-authorization": `Basic ${basic}` }), token)
    assert.strictEqual(ProxyPolicy.presentedToken({ authorization: "Bearer sk-real-looking" }), undefined)
    assert.isUndefined(ProxyPolicy.presentedToken({}))
  })
})

describe("ProxyToken", () => {
  const key = new Uint8Array(32).fill(7)
  const other = new Uint8Array(32).fill(8)

  it("verifies for its session only, under its key only", () => {
    const token = Redacted.value(ProxyToken.mint(key, "ses_a"))
    assert.isTrue(token.startsWith("aap_pxy_"))
    assert.strictEqual(token.length, ProxyToken.TOKEN_LENGTH)
    assert.isTrue(ProxyToken.verify(key, "ses_a", token))
    assert.isFalse(ProxyToken.verify(key, "ses_b", token))
    assert.isFalse(ProxyToken.verify(other, "ses_a", token))
  })

  it("two tokens for the same session differ", () => {
    assert.notStrictEqual(
      Redacted.value(ProxyToken.mint(key, "ses_a")),
      Redacted.value(ProxyToken.mint(key, "ses_a"))
    )
  })

  it.prop(
    "any single-character change is refused",
    [FastCheck.nat(), FastCheck.constantFrom(..."ABCxyz019-_")],
    ([pos, ch]) => {
      const token = Redacted.value(ProxyToken.mint(key, "ses_a"))
      const i = 8 + (pos % (token.length - 8))
      const changed = token.slice(0, i) + ch + token.slice(i + 1)
      if (changed !== token) assert.isFalse(ProxyToken.verify(key, "ses_a", changed))
    }
  )

  it("refuses garbage of every shape", () => {
    for (const bad of ["", "aap_pxy_", "aap_pxy_!!!", "x".repeat(64), `aap_pxy_${"A".repeat(56)}`]) {
      assert.isFalse(ProxyToken.verify(key, "ses_a", bad))
    }
  })
})
