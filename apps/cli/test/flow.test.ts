/**
 * The built binary against a real broker (`aap serve` on an ephemeral port, temp AAP_HOME,
 * embedded engine, local keyring, JSONL audit; STS answered by a fake endpoint through
 * AWS_ENDPOINT_URL_STS): the operator and agent flows, `exec`, `aws credential-process`, and
 * how broker errors look.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { afterAll, beforeAll } from "vitest"
import {
  aap,
  aapLive,
  baseEnv,
  bin,
  fakeSts,
  type Result,
  type RunningBroker,
  root,
  startBroker,
  tempDir
} from "./support.js"

let broker: RunningBroker
let sts: Awaited<ReturnType<typeof fakeSts>>
let operator: Record<string, string>
let agent: Record<string, string>
const agentConfig = tempDir("aap-cli-xdg-")

const CANARY = "sk-canary-7f3e9a1c5b2d4e6f8a0b"

const json = (r: Result) => {
  assert.strictEqual(r.code, 0, `exit ${r.code}: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

/** One line on stderr, prefixed, no stack trace. */
const oneLine = (r: Result) => {
  const lines = r.stderr.trim().split("\n")
  assert.strictEqual(lines.length, 1, r.stderr)
  assert.match(lines[0] ?? "", /^aap( exec)?: /)
  assert.notMatch(r.stderr, /\bat .*\.m?[jt]s:\d+/)
  return lines[0] ?? ""
}

beforeAll(async () => {
  sts = await fakeSts()
  broker = await startBroker({
    AWS_ENDPOINT_URL_STS: sts.url,
    AWS_EC2_METADATA_DISABLED: "true",
    AAP_MEMORY_BUCKET: "aap-memory-test"
  })
  operator = { AAP_URL: broker.url, AAP_HOME: broker.home, XDG_CONFIG_HOME: tempDir("aap-cli-opxdg-") }
  agent = { AAP_URL: broker.url, AAP_HOME: tempDir("aap-cli-agenthome-"), XDG_CONFIG_HOME: agentConfig }
}, 90_000)

afterAll(async () => {
  const stopped = await broker?.stop()
  await sts?.close()
  assert.strictEqual(stopped?.code, 0, stopped?.stderr)
})

describe("operator and agent flow", () => {
  it("agent invite → login writes a 0600 credentials file; a used code is refused in one line", () => {
    const invite = json(aap(["agent", "invite", "codex", "--json"], operator))
    assert.match(invite.code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/)
    const login = aap(["login", "--code", invite.code], agent)
    assert.strictEqual(login.code, 0, login.stderr)
    assert.include(login.stdout, "as agent codex")
    const file = Path.join(agentConfig, "aap", "credentials")
    assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
    assert.strictEqual(Fs.statSync(Path.dirname(file)).mode & 0o777, 0o700)
    const saved = JSON.parse(Fs.readFileSync(file, "utf8"))
    assert.strictEqual(saved.agent, "codex")
    assert.strictEqual(saved.url, broker.url)
    assert.match(saved.token, /^aap_agt_/)

    const again = aap(["login", "--code", invite.code], {
      ...agent,
      XDG_CONFIG_HOME: tempDir("aap-cli-xdg2-")
    })
    assert.strictEqual(again.code, 4)
    assert.include(oneLine(again), "(Unauthorized)")
  })

  it("a credentials file readable by others is refused", () => {
    const dir = tempDir("aap-cli-xdg-open-")
    Fs.mkdirSync(Path.join(dir, "aap"))
    const file = Path.join(dir, "aap", "credentials")
    Fs.copyFileSync(Path.join(agentConfig, "aap", "credentials"), file)
    Fs.chmodSync(file, 0o644)
    const r = aap(["session", "request", "openrouter-chat"], { ...agent, XDG_CONFIG_HOME: dir })
    assert.strictEqual(r.code, 4)
    assert.include(oneLine(r), `${file} is accessible by others (mode 0644); run: chmod 600`)
  })

  it("secret put from stdin and --file, list shows no values, rm writes a tombstone", () => {
    const put = aap(["secret", "put", "codex/openrouter/api-key", "--json"], operator, {
      input: `${CANARY}\n`
    })
    assert.deepStrictEqual(json(put), { wallet: "codex", name: "openrouter/api-key", version: 1 })
    const file = Path.join(tempDir("aap-cli-secret-"), "value")
    Fs.writeFileSync(file, "temporary")
    assert.strictEqual(
      json(aap(["secret", "put", "codex/tmp/x", "--file", file, "--json"], operator)).version,
      1
    )
    const list = aap(["secret", "list", "codex", "--json"], operator)
    const names = json(list).secrets.map((s: { name: string }) => s.name)
    assert.includeMembers(names, ["openrouter/api-key", "tmp/x"])
    assert.notInclude(list.stdout, CANARY)
    assert.notInclude(list.stdout, "temporary")
    const rm = aap(["secret", "rm", "codex/tmp/x"], operator)
    assert.strictEqual(rm.code, 0, rm.stderr)
    assert.match(rm.stdout, /deleted codex\/tmp\/x \(tombstone version 2\)/)
    const bad = aap(["secret", "put", "no-slash"], operator, { input: "x" })
    assert.strictEqual(bad.code, 2)
    oneLine(bad)
  })

  it("low tier: request is active at once; show and revoke", () => {
    const s = json(aap(["session", "request", "openrouter-chat", "--ttl", "10m", "--json"], agent))
    assert.strictEqual(s.status, "active")
    assert.strictEqual(s.ttlSeconds, 600)
    const shown = json(aap(["session", "show", s.id, "--json"], agent))
    assert.strictEqual(shown.id, s.id)
    const revoked = json(aap(["session", "revoke", s.id, "--reason", "done", "--json"], agent))
    assert.strictEqual(revoked.status, "revoked")
    assert.strictEqual(revoked.ended.reason, "done")
  })

  it("high tier: request --wait blocks until an operator approves; deny ends another", async () => {
    const waiting = aapLive(["session", "request", "ssh-platform-host", "--wait", "--json"], agent)
    let pending: Array<{ id: string; capability: string }> = []
    for (let i = 0; i < 100 && pending.length === 0; i++) {
      pending = json(aap(["session", "list", "--status", "pending_approval", "--json"], operator)).sessions
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 200))
    }
    assert.strictEqual(pending.length, 1)
    const id = pending[0]?.id ?? ""
    const self = aap(["session", "approve", id], agent)
    assert.strictEqual(self.code, 4)
    assert.include(oneLine(self), "(SelfApproval)")
    const approve = aap(["session", "approve", id, "--reason", "ship it"], operator)
    assert.strictEqual(approve.code, 0, approve.stderr)
    const done = await waiting.done
    assert.strictEqual(done.code, 0, done.stderr)
    assert.strictEqual(done.stderr, "", "no progress output when stderr is not a terminal")
    const decided = JSON.parse(done.stdout)
    assert.strictEqual(decided.id, id)
    assert.strictEqual(decided.status, "active")
    assert.strictEqual(decided.approvals[0].operator, "alice")

    // On a terminal (util-linux `script` gives the command a pty) --wait shows its progress line.
    const tty = spawn(
      "script",
      ["-qec", `${process.execPath} ${bin} session request ssh-platform-host --wait`, "/dev/null"],
      { cwd: root, env: baseEnv(agent) }
    )
    let screen = ""
    tty.stdout.on("data", (c: Buffer) => {
      screen += c.toString()
    })
    let ttyPending: Array<{ id: string; capability: string }> = []
    for (let i = 0; i < 100 && ttyPending.length === 0; i++) {
      ttyPending = json(aap(["session", "list", "--status", "pending_approval", "--json"], operator)).sessions
      if (ttyPending.length === 0) await new Promise((r) => setTimeout(r, 200))
    }
    for (let i = 0; i < 50 && !screen.includes("waiting for approval"); i++)
      await new Promise((r) => setTimeout(r, 100))
    assert.strictEqual(aap(["session", "approve", ttyPending[0]?.id ?? ""], operator).code, 0)
    const ttyCode = await new Promise<number | null>((resolve) => tty.on("close", resolve))
    assert.strictEqual(ttyCode, 0, screen)
    assert.include(
      screen,
      `waiting for approval of ${ttyPending[0]?.id} (ssh-platform-host, high): 0/1 approvals`
    )
    assert.match(screen, new RegExp(`${ttyPending[0]?.id}\\s+active`))
    aap(["session", "revoke", ttyPending[0]?.id ?? ""], operator)

    const other = json(aap(["session", "request", "ssh-platform-host", "--json"], agent))
    assert.strictEqual(other.status, "pending_approval")
    assert.strictEqual(
      json(aap(["session", "deny", other.id, "--reason", "not today", "--json"], operator)).status,
      "denied"
    )
    const listed = aap(["session", "list", "--agent", "codex"], operator)
    assert.strictEqual(listed.code, 0, listed.stderr)
    assert.match(listed.stdout, new RegExp(`${other.id}\\s+denied`))
    aap(["session", "revoke", id], operator)
  })

  it("audit tail and verify", () => {
    const verify = json(aap(["audit", "verify", "--json"], operator))
    assert.isTrue(verify.ok)
    assert.isAbove(verify.streams[0].records, 5)
    const tail = aap(["audit", "tail", "--limit", "5", "--json"], operator)
    assert.strictEqual(tail.code, 0, tail.stderr)
    const events = tail.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
    assert.strictEqual(events.length, 5)
    assert.notInclude(tail.stdout, CANARY)
    const human = aap(["audit", "verify"], operator)
    assert.match(human.stdout, /^audit log intact: 1 stream, \d+ records/)
  })
})

describe("aap exec", () => {
  it("injects the secret, masks it in stdout and stderr (also split across writes), exits with the child's code, revokes", () => {
    const script = [
      `process.stdout.write("env=" + process.env.OPENROUTER_API_KEY + "\\n")`,
      `const v = process.env.OPENROUTER_API_KEY`,
      `process.stdout.write(v.slice(0, 7))`,
      `setTimeout(() => { process.stdout.write(v.slice(7) + " tail\\n"); process.stderr.write("err:" + v + "\\n"); process.exit(7) }, 150)`
    ].join(";")
    const r = aap(["exec", "openrouter-chat", "--", process.execPath, "-e", script], agent)
    assert.strictEqual(r.code, 7, r.stderr)
    assert.strictEqual(r.stdout, "env=[masked]\n[masked] tail\n")
    assert.strictEqual(r.stderr, "err:[masked]\n")
    assert.notInclude(r.stdout + r.stderr, CANARY)
    const sessions = json(
      aap(["session", "list", "--agent", "codex", "--status", "revoked", "--json"], operator)
    ).sessions
    const last = sessions.find((s: { capability: string; ended?: { reason?: string } }) =>
      s.ended?.reason?.includes("child exited 7")
    )
    assert.isDefined(last, "the exec session is revoked when the child exits")
  })

  it("--proxy: a capability not behind the egress proxy is refused before any session is requested", () => {
    const before = json(aap(["session", "list", "--agent", "codex", "--json"], operator)).sessions.length
    const r = aap(["exec", "--proxy", "openrouter-chat", "--", "true"], agent)
    assert.strictEqual(r.code, 125, r.stderr)
    assert.include(oneLine(r), "openrouter-chat is not served through the egress proxy")
    const after = json(aap(["session", "list", "--agent", "codex", "--json"], operator)).sessions.length
    assert.strictEqual(after, before, "no session was opened")
  })

  it("--proxy: CMD gets the proxy URL in the SDK's base-URL variable and a proxy token as its key", () => {
    const invite = json(aap(["agent", "invite", "claude", "--json"], operator))
    const claude = {
      AAP_URL: broker.url,
      AAP_HOME: tempDir("aap-cli-claudehome-"),
      XDG_CONFIG_HOME: tempDir("aap-cli-claudexdg-")
    }
    assert.strictEqual(aap(["login", "--code", invite.code], claude).code, 0)
    const script = [
      `const e = process.env`,
      `console.log([e.ANTHROPIC_API_KEY.startsWith("aap_pxy_"), e.ANTHROPIC_BASE_URL.startsWith(${JSON.stringify(`${broker.url}/v1/proxy/`)}), e.AAP_PROXY_TOKEN === e.ANTHROPIC_API_KEY].join(","))`
    ].join(";")
    const r = aap(["exec", "--proxy", "anthropic-messages", "--", process.execPath, "-e", script], claude)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.strictEqual(r.stdout, "true,true,true\n")
  })

  it("argv reaches the child without a shell ($VAR is not expanded early)", () => {
    const r = aap(["exec", "openrouter-chat", "--", "printf", "%s|%s", "$OPENROUTER_API_KEY", "a b"], agent)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.strictEqual(r.stdout, "$OPENROUTER_API_KEY|a b")
  })

  it("forwards SIGTERM to the child and exits with its code; SIGINT kills it → 130", async () => {
    const trap = `process.on("SIGTERM", () => { console.log("child got SIGTERM"); process.exit(42) }); console.log("ready"); setInterval(() => {}, 1000)`
    const live = aapLive(["exec", "openrouter-chat", "--", process.execPath, "-e", trap], agent)
    await live.waitFor("ready")
    live.child.kill("SIGTERM")
    const r = await live.done
    assert.strictEqual(r.code, 42, r.stderr)
    assert.include(r.stdout, "child got SIGTERM")

    const plain = aapLive(
      [
        "exec",
        "openrouter-chat",
        "--",
        process.execPath,
        "-e",
        `console.log("ready"); setInterval(() => {}, 1000)`
      ],
      agent
    )
    await plain.waitFor("ready")
    plain.child.kill("SIGINT")
    const r2 = await plain.done
    assert.strictEqual(r2.code, 130, r2.stderr)
    const revoked = json(
      aap(["session", "list", "--agent", "codex", "--status", "revoked", "--json"], operator)
    ).sessions
    assert.isTrue(revoked.some((s: { ended?: { reason?: string } }) => s.ended?.reason?.includes("SIGINT")))
  })

  it("a missing command exits 127 in one line and revokes the session", () => {
    const r = aap(["exec", "openrouter-chat", "--", "no-such-command-aap"], agent)
    assert.strictEqual(r.code, 127)
    assert.strictEqual(oneLine(r), "aap exec: command not found: no-such-command-aap")
  })

  it("ssh-certificate: a private ssh-agent holds the key and certificate for the child, killed afterwards", async () => {
    const ca = aap(["secret", "put", "codex/ssh/ca-key"], operator, {
      input: (await import("node:crypto"))
        .generateKeyPairSync("ed25519")
        .privateKey.export({ format: "pem", type: "pkcs8" })
        .toString()
    })
    assert.strictEqual(ca.code, 0, ca.stderr)
    const live = aapLive(
      ["exec", "ssh-platform-host", "--", "sh", "-c", 'echo "sock=$SSH_AUTH_SOCK"; ssh-add -L'],
      agent
    )
    let pending: Array<{ id: string; capability: string }> = []
    for (let i = 0; i < 100 && pending.length === 0; i++) {
      pending = json(
        aap(["session", "list", "--status", "pending_approval", "--json"], operator)
      ).sessions.filter((s: { capability: string }) => s.capability === "ssh-platform-host")
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 200))
    }
    assert.strictEqual(pending.length, 1)
    assert.strictEqual(aap(["session", "approve", pending[0]?.id ?? ""], operator).code, 0)
    const r = await live.done
    assert.strictEqual(r.code, 0, r.stderr)
    const sock = /sock=(\S+)/.exec(r.stdout)?.[1] ?? ""
    assert.match(sock, /aap-ssh-.*agent\.sock$/)
    assert.match(r.stdout, /ssh-ed25519-cert-v01@openssh\.com /)
    assert.isFalse(Fs.existsSync(sock), "the private agent's socket directory is removed")
  })
})

describe("aap aws credential-process", () => {
  it("prints Version 1 JSON from the broker's STS delivery", async () => {
    // Spawned asynchronously: the fake STS endpoint answers from this process.
    const r = await aapLive(["aws", "credential-process", "memory-s3"], agent).done
    const out = json(r)
    assert.deepStrictEqual(Object.keys(out), [
      "Version",
      "AccessKeyId",
      "SecretAccessKey",
      "SessionToken",
      "Expiration"
    ])
    assert.strictEqual(out.Version, 1)
    assert.strictEqual(out.AccessKeyId, "ASIATESTACCESSKEY01")
    assert.strictEqual(out.SecretAccessKey, "canary-secret-access-key-0123456789abcdef")
    assert.match(out.Expiration, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/)
    assert.isTrue(sts.requests.some((b) => b.includes("Action=AssumeRoleWithWebIdentity")))
  })

  it("the AWS CLI picks the credentials up from a profile's credential_process", async () => {
    // Debian's awscli (v2.9): /usr/bin/aws; `aws configure export-credentials` runs the process.
    const awsHome = tempDir("aap-cli-aws-")
    const config = Path.join(awsHome, "config")
    Fs.writeFileSync(
      config,
      `[profile p]\ncredential_process = ${process.execPath} ${bin} aws credential-process memory-s3\nregion = eu-central-1\n`
    )
    const aws = spawn(
      "/usr/bin/aws",
      ["configure", "export-credentials", "--profile", "p", "--format", "process"],
      {
        env: {
          ...baseEnv(agent),
          AWS_CONFIG_FILE: config,
          AWS_SHARED_CREDENTIALS_FILE: Path.join(awsHome, "credentials"),
          AWS_EC2_METADATA_DISABLED: "true"
        },
        cwd: root
      }
    )
    let stdout = ""
    let stderr = ""
    aws.stdout.on("data", (c: Buffer) => {
      stdout += c.toString()
    })
    aws.stderr.on("data", (c: Buffer) => {
      stderr += c.toString()
    })
    const code = await new Promise<number | null | string>((resolve) => {
      aws.on("error", (e) => resolve(`could not start /usr/bin/aws (${e.message}): apt-get install awscli`))
      aws.on("close", resolve)
    })
    assert.strictEqual(code, 0, stderr)
    const exported = JSON.parse(stdout)
    assert.strictEqual(exported.Version, 1)
    assert.strictEqual(exported.AccessKeyId, "ASIATESTACCESSKEY01")
    assert.strictEqual(exported.SessionToken, "canary-session-token-FwoGZXIvYXdzEXAMPLE")
    assert.isString(exported.Expiration)
  })

  it("a non-aws capability is refused in one line", () => {
    const r = aap(["aws", "credential-process", "openrouter-chat"], agent)
    assert.strictEqual(r.code, 1)
    assert.include(oneLine(r), "credential-process needs an aws-sts one")
  })
})

describe("broker errors: one line, non-zero exit, never a stack trace", () => {
  it("unknown capability → 1", () => {
    const r = aap(["session", "request", "no-such-capability"], agent)
    assert.strictEqual(r.code, 1)
    assert.include(oneLine(r), "(RequestDenied)")
  })

  it("no token → 4 with a hint", () => {
    const r = aap(["session", "request", "openrouter-chat"], {
      ...agent,
      XDG_CONFIG_HOME: tempDir("aap-cli-none-")
    })
    assert.strictEqual(r.code, 4)
    assert.include(oneLine(r), "run aap login --code CODE")
  })

  it("agent on an operator command → 4", () => {
    const r = aap(["audit", "verify"], {
      ...agent,
      AAP_TOKEN: JSON.parse(Fs.readFileSync(Path.join(agentConfig, "aap", "credentials"), "utf8")).token
    })
    assert.strictEqual(r.code, 4)
    assert.include(oneLine(r), "(Forbidden)")
  })

  it("unknown session → 1", () => {
    const r = aap(["session", "show", "ses_00000000000000000000000000"], operator)
    assert.strictEqual(r.code, 1)
    assert.include(oneLine(r), "(NotFound)")
  })

  it("broker unreachable → 3", () => {
    const r = aap(["session", "list"], { ...operator, AAP_URL: "http://127.0.0.1:9" })
    assert.strictEqual(r.code, 3)
    assert.include(oneLine(r), "cannot reach the broker at http://127.0.0.1:9")
  })

  it("exec before the child runs: aap's failure is 125", () => {
    const r = aap(["exec", "no-such-capability", "--", "true"], agent)
    assert.strictEqual(r.code, 125)
    assert.include(oneLine(r), "(RequestDenied)")
  })
})

describe("aap demo", () => {
  it("walks the whole product against the broker and ends with a verified audit log", () => {
    const r = aap(["demo"], operator)
    assert.strictEqual(r.code, 0, r.stderr)
    for (const step of [
      "1. The broker is up",
      "the same code a second time          → refused (Unauthorized)",
      "openrouter-chat → ses_",
      "pending_approval (needs 1 approval)",
      "delivery before approval → refused (SessionNotActive)",
      "the agent approving its own request → refused (SelfApproval)",
      "→ active",
      "SSH certificate aap:ses_",
      "delivery after revocation → refused",
      "aap audit verify → intact",
      "the secret value appears in the audit log: no"
    ]) {
      assert.include(r.stdout, step)
    }
    assert.notMatch(r.stdout, /sk-or-demo-[0-9a-f]{24}/)
  })
})
