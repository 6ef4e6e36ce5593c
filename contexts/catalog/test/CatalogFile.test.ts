// biome-ignore-all lint/suspicious/noTemplateCurlyInString: catalog templates are written ${variable}
import { readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { FileSystem } from "@effect/platform"
import { SystemError } from "@effect/platform/Error"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { Catalog, CatalogFile } from "../src/index.js"

const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url))
const example = fileURLToPath(new URL("../../../examples/catalog.yaml", import.meta.url))

/** fixture → every expected issue: [line:column, path, start of the message], in file order. */
const expected: Record<string, ReadonlyArray<readonly [string, string, string]>> = {
  "bucket-level-without-prefix-condition": [
    [
      "17:23",
      "capabilities[0].backing.statements[0].resources[0]",
      "the bucket ${memory_bucket} itself lists every wallet's keys"
    ]
  ],
  "prefix-condition-escapes-wallet": [
    [
      "17:23",
      "capabilities[0].backing.statements[0].resources[0]",
      'the s3:prefix condition on the bucket ${memory_bucket} must stay inside the wallet ("${wallet}/..."); "*" does not'
    ]
  ],
  "approvals-above-operators": [
    [
      "10:16",
      "capabilities[0].approvals",
      "a critical capability needs 2 distinct operator approvals, but the cat"
    ]
  ],
  "approvals-on-low-tier": [
    [
      "9:16",
      "capabilities[0].approvals",
      "approvals are not allowed on a low capability (low and medium are gran"
    ]
  ],
  "backing-field-missing": [["12:7", "capabilities[0].backing.ca", 'missing required key "ca"']],
  "bad-duration": [
    [
      "10:21",
      "capabilities[0].ttl.default",
      "expected a duration such as 90s, 15m, 1h or 1h30m (at most 366 days), "
    ]
  ],
  "bare-star-action": [
    [
      "16:21",
      "capabilities[0].backing.statements[0].actions[0]",
      'expected an IAM action "service:Action" such as s3:GetObject or s3:Get'
    ]
  ],
  "critical-zero-approvals": [
    [
      "10:16",
      "capabilities[0].approvals",
      "expected a whole number of approvals from 1 to 10 (high and critical c"
    ]
  ],
  "duplicate-agent-id": [["4:11", "agents[1].id", 'duplicate agent id "codex"; first declared at agents[0]']],
  "duplicate-capability-id": [
    ["12:9", "capabilities[1].id", 'duplicate capability id "chat"; first declared at capabilities[0]']
  ],
  "duplicate-yaml-key": [["9:5", "capabilities[0].tier", 'duplicate key "tier"']],
  empty: [["1:1", "", "expected a mapping with the keys schemaVersion, agents, operators and "]],
  "high-without-operators": [
    ["7:11", "capabilities[0].tier", "a high capability needs 1 distinct operator approval, but the catalog "]
  ],
  "iam-policy-variable": [
    [
      "18:15",
      "capabilities[0].backing.statements[0].resources[0]",
      'invalid template "arn:aws:s3:::${memory_bucket}/${aws:username}/*": "$'
    ]
  ],
  "many-errors": [
    ["4:11", "agents[1].id", 'duplicate agent id "codex"; first declared at agents[0]'],
    ["4:26", "agents[1].wallet", 'wallet "a#b" must not contain "#"; expected lowercase letters, digits,'],
    [
      "9:21",
      "capabilities[0].agents[1]",
      'unknown agent "gemini"; expected one of the ids under agents ("codex")'
    ],
    ["10:21", "capabilities[0].ttl.default", "default 2h is above max 1h; expected default <= max"],
    [
      "11:59",
      "capabilities[0].backing.env",
      'expected an environment variable name (A-Z, 0-9, "_", not starting wit'
    ],
    [
      "13:11",
      "capabilities[1].tier",
      "a critical capability needs 1 distinct operator approval, but the cata"
    ],
    ["15:30", "capabilities[1].ttl.max", "max 1h is above the critical tier ceiling of 15m"],
    ["16:14", "capabilities[1].backing.env", 'missing required key "env"']
  ],
  "missing-field": [["10:10", "capabilities[0].ttl.max", 'missing required key "max"']],
  "policy-too-large": [
    [
      "16:9",
      "capabilities[0].backing.statements",
      "the session policy can reach 5076 characters with the longest allowed "
    ]
  ],
  "proxy-connect-bad": [
    [
      "20:19",
      "capabilities[0].backing.proxy.connect[0]",
      '"api.example.com:443" is the upstream\'s own host: CONNECT to it is interc'
    ],
    ["20:40", "capabilities[0].backing.proxy.connect[1]", "port 99999 is out of range; expected 1 to 65535"],
    ["20:72", "capabilities[0].backing.proxy.connect[3]", 'duplicate CONNECT target "PyPI.org:443"'],
    [
      "20:86",
      "capabilities[0].backing.proxy.connect[4]",
      'expected a host:port CONNECT target such as api.github.com:443, got "e'
    ]
  ],
  "proxy-not-https": [
    [
      "16:19",
      "capabilities[0].backing.proxy.upstream",
      "expected an https:// URL without query or fragment, such as https://op"
    ]
  ],
  "syntax-error": [["10:5", "", "YAML: Flow sequence in block collection must be sufficiently indented "]],
  "ttl-above-tier-ceiling": [
    ["12:12", "capabilities[0].ttl.max", "max 2h is above the high tier ceiling of 1h"]
  ],
  "aws-sts-ttl-below-sts-minimum": [
    [
      "10:21",
      "capabilities[0].ttl.default",
      "default 10m is below 15m; expected default >= 15m for an aws-sts capability (STS issues credentials for at least 900 s, and aap never issues credentials that outlive their session)"
    ]
  ],
  "ttl-default-above-max": [
    ["10:21", "capabilities[0].ttl.default", "default 2h is above max 1h; expected default <= max"]
  ],
  "unknown-agent-reference": [
    [
      "9:21",
      "capabilities[0].agents[1]",
      'unknown agent "gemini"; expected one of the ids under agents ("codex")'
    ]
  ],
  "unknown-backing-type": [
    [
      "12:13",
      "capabilities[0].backing.type",
      'expected "aws-sts" | "bearer-token" | "ssh-certificate" | "wrapped-com'
    ]
  ],
  "unknown-key": [
    [
      "12:5",
      "capabilities[0].maxTtl",
      'unknown key "maxTtl"; expected one of "id", "description", "tier", "ag'
    ]
  ],
  "unknown-template-variable": [
    [
      "17:68",
      "capabilities[0].backing.statements[0].resources[1]",
      "unknown template variable ${bucket}; expected one of ${wallet}, ${agen"
    ]
  ],
  "unknown-tier": [
    ["8:11", "capabilities[0].tier", 'expected one of "low", "medium", "high", "critical", got "urgent"']
  ],
  "unterminated-template": [
    [
      "17:23",
      "capabilities[0].backing.statements[0].resources[0]",
      'invalid template "arn:aws:s3:::${memory_bucket/${wallet}/*": untermina'
    ]
  ],
  "wallet-bucket-unscoped": [
    [
      "17:23",
      "capabilities[0].backing.statements[0].resources[0]",
      "resource on the wallet-scoped bucket ${memory_bucket} must be limited "
    ]
  ],
  "wallet-escape": [
    ["5:13", "agents[1].wallet", 'wallet "../codex" must not contain ".."; expected lowercase letters, d']
  ],
  "wallet-prefix-unterminated": [
    [
      "17:23",
      "capabilities[0].backing.statements[0].resources[0]",
      "resource on the wallet-scoped bucket ${vault_bucket} must be limited t"
    ]
  ],
  "wallet-slash": [
    ["3:26", "agents[0].wallet", 'wallet "team/codex" must not contain "/"; expected lowercase letters, ']
  ],
  "wrong-schema-version": [["1:16", "schemaVersion", "expected 1, got 2"]]
}

const issuesOf = (name: string) => {
  const result = CatalogFile.parse(readFileSync(`${fixtures}${name}.yaml`, "utf8"), `${name}.yaml`)
  assert.isTrue(Either.isLeft(result), `${name} should be invalid`)
  return Either.isLeft(result) ? result.left.issues : []
}

describe("CatalogFile.parse: broken fixtures", () => {
  it("has an expectation for every fixture file", () => {
    const files = readdirSync(fixtures)
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => f.slice(0, -".yaml".length))
      .sort()
    assert.deepStrictEqual(files, Object.keys(expected).sort())
  })

  for (const [name, issues] of Object.entries(expected)) {
    it(`${name}: reports ${issues.length} issue(s) at the exact locations`, () => {
      const actual = issuesOf(name)
      assert.deepStrictEqual(
        actual.map((i) => [`${i.line}:${i.column}`, i.path]),
        issues.map(([pos, path]) => [pos, path])
      )
      actual.forEach((issue, n) => {
        assert.isTrue(
          issue.message.startsWith(issues[n]![2]),
          `${issue.message} should start with ${issues[n]![2]}`
        )
        assert.strictEqual(issue.file, `${name}.yaml`)
      })
    })
  }

  it("many-errors: one pass reports shape and semantic errors together", () => {
    const tags = issuesOf("many-errors").map((i) => i.path)
    assert.include(tags, "agents[1].wallet") // shape
    assert.include(tags, "capabilities[0].agents[1]") // reference
    assert.include(tags, "capabilities[1].ttl.max") // tier ceiling
  })

  it("formats issues as file:line:column path: message", () => {
    const [issue] = issuesOf("missing-field")
    assert.strictEqual(
      Catalog.formatIssue(issue!),
      'missing-field.yaml:10:10 capabilities[0].ttl.max: missing required key "max"'
    )
    const result = CatalogFile.parse("", "empty.yaml")
    assert.isTrue(Either.isLeft(result))
    if (Either.isLeft(result)) {
      assert.strictEqual(result.left._tag, "CatalogInvalid")
      assert.match(result.left.message, /^empty\.yaml: 1 error\nempty\.yaml:1:1 expected a mapping/)
    }
  })
})

describe("CatalogFile.parse: valid catalogs", () => {
  it("accepts the example catalog with every tier and backing type", () => {
    const result = CatalogFile.parse(readFileSync(example, "utf8"), "examples/catalog.yaml")
    if (Either.isLeft(result)) assert.fail(result.left.message)
    const catalog = Either.getOrThrow(result)
    assert.deepStrictEqual([...new Set(catalog.capabilities.map((c) => c.tier))].sort(), [
      "critical",
      "high",
      "low",
      "medium"
    ])
    assert.deepStrictEqual([...new Set(catalog.capabilities.map((c) => c.backing.type))].sort(), [
      "aws-sts",
      "bearer-token",
      "ssh-certificate",
      "wrapped-command"
    ])
    const bearer = catalog.capabilities.flatMap((c) => (c.backing.type === "bearer-token" ? [c.backing] : []))
    assert.isTrue(bearer.some((b) => b.provision?.type === "openrouter"))
    assert.isTrue(bearer.some((b) => b.proxy !== undefined))
  })

  it("decodes durations to seconds and applies defaults", () => {
    const text = `schemaVersion: 1
agents: [{ id: codex, wallet: codex }]
operators: [{ id: alice }]
capabilities:
  - id: memory
    tier: high
    agents: [codex]
    ttl: { default: 930s, max: 1h }
    backing:
      type: aws-sts
      roleArn: arn:aws:iam::123456789012:role/aap-memory
      region: eu-central-1
      statements:
        - actions: [s3:GetObject]
          resources: ["arn:aws:s3:::\${memory_bucket}/\${wallet}/*", "arn:aws:s3:::\${memory_bucket}/\${wallet}"]
`
    const catalog = Either.getOrThrow(CatalogFile.parse(text))
    const capability = catalog.capabilities[0]!
    assert.deepStrictEqual(capability.ttl, { default: 930, max: 3600 })
    assert.strictEqual(Catalog.requiredApprovals(capability), 1)
    assert.strictEqual(
      capability.backing.type === "aws-sts" && capability.backing.statements[0].effect,
      "Allow"
    )
  })
})

/** FileSystem backed by node:fs for reads (the catalog package does not depend on platform-node). */
const NodeReads = FileSystem.layerNoop({
  readFileString: (path) =>
    Effect.try({
      try: () => readFileSync(path, "utf8"),
      catch: () =>
        new SystemError({
          reason: "NotFound",
          module: "FileSystem",
          method: "readFileString",
          pathOrDescriptor: path
        })
    })
})

describe("CatalogFile.parse: the wallet fence", () => {
  const withStatements = (statements: string) => `schemaVersion: 1
agents: [{ id: codex, wallet: codex }]
operators: []
capabilities:
  - id: memory
    tier: medium
    agents: [codex]
    ttl: { default: 15m, max: 1h }
    backing:
      type: aws-sts
      roleArn: arn:aws:iam::123456789012:role/aap-memory
      region: eu-central-1
      statements:
${statements}
`
  it("accepts a Deny on the whole bucket (it only narrows)", () => {
    const text = withStatements(`        - actions: [s3:GetObject]
          resources: ["arn:aws:s3:::\${memory_bucket}/\${wallet}/*"]
        - effect: Deny
          actions: [s3:DeleteObject]
          resources: ["arn:aws:s3:::\${memory_bucket}/*"]`)
    assert.isTrue(Either.isRight(CatalogFile.parse(text)))
  })

  it("accepts the bucket itself with an s3:prefix condition inside the wallet", () => {
    const text = withStatements(`        - actions: [s3:ListBucket]
          resources: ["arn:aws:s3:::\${vault_bucket}"]
          conditions: { StringEquals: { "s3:prefix": ["\${wallet}", "\${wallet}/notes/"] } }`)
    assert.isTrue(Either.isRight(CatalogFile.parse(text)))
  })

  it("refuses a prefix that only starts like the wallet", () => {
    const text = withStatements(`        - actions: [s3:ListBucket]
          resources: ["arn:aws:s3:::\${vault_bucket}"]
          conditions: { StringLike: { "s3:prefix": "\${wallet}*" } }`)
    const result = CatalogFile.parse(text)
    assert.isTrue(Either.isLeft(result) && result.left.issues[0]!.message.includes('"${wallet}*" does not'))
  })
})

describe("CatalogFile.load", () => {
  it.effect("reads a file through FileSystem", () =>
    Effect.gen(function* () {
      const catalog = yield* CatalogFile.load(example)
      assert.strictEqual(catalog.schemaVersion, 1)
    }).pipe(Effect.provide(NodeReads))
  )

  it.effect("fails with CatalogInvalid carrying every issue", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(CatalogFile.load(`${fixtures}many-errors.yaml`))
      assert.strictEqual(error._tag, "CatalogInvalid")
      if (error._tag === "CatalogInvalid") assert.strictEqual(error.issues.length, 8)
    }).pipe(Effect.provide(NodeReads))
  )

  it.effect("fails with CatalogUnreadable for a missing file", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(CatalogFile.load(`${fixtures}does-not-exist.yaml`))
      assert.strictEqual(error._tag, "CatalogUnreadable")
      assert.strictEqual(error.message, `cannot read catalog ${fixtures}does-not-exist.yaml: no such file`)
    }).pipe(Effect.provide(NodeReads))
  )
})
