/**
 * The binary itself: version, help, completions, usage errors, the bundle's shape (what the
 * fast path loads), and the keyring commands (local, no broker).
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { commands } from "../src/Overview.js"
import { aap, aapLive, bin, tempDir } from "./support.js"

const dist = fileURLToPath(new URL("../dist/", import.meta.url))

describe("aap (the built binary)", () => {
  it("--version prints the package version", () => {
    const { version } = JSON.parse(
      Fs.readFileSync(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8")
    )
    const result = aap(["--version"])
    assert.strictEqual(result.code, 0)
    assert.strictEqual(result.stdout, `${version}\n`)
  })

  it("--help (and no arguments) lists every command of the tree; each has its own --help", () => {
    const help = aap(["--help"])
    assert.strictEqual(help.code, 0)
    assert.strictEqual(aap([]).stdout, help.stdout)
    for (const [usage] of commands) assert.include(help.stdout, usage)
    // The @effect/cli tree knows the same top-level commands as the overview.
    const tree = aap(["--completions", "bash"])
    assert.strictEqual(tree.code, 0, tree.stderr)
    const top = new Set(commands.map(([usage]) => usage.split(" ")[0]))
    for (const name of top) assert.include(tree.stdout, name ?? "")
    for (const group of ["session", "exec", "secret"]) {
      const sub = aap([group, "--help"])
      assert.strictEqual(sub.code, 0, sub.stderr)
      assert.include(sub.stdout, "--url")
    }
    const request = aap(["session", "request", "--help"])
    assert.include(request.stdout, "--wait")
    assert.include(request.stdout, "--json")
  })

  it("a usage error exits 2", () => {
    const r = aap(["session", "request"])
    assert.strictEqual(r.code, 2)
    const ttl = aap(["session", "request", "x", "--ttl", "soon"])
    assert.strictEqual(ttl.code, 2)
    assert.strictEqual(ttl.stderr.trim(), 'aap: --ttl "soon": expected a duration such as 900, 15m or 1h')
  })

  it("prints a message and exits 1 when the bundle is missing", () => {
    const dir = tempDir("aap-bin-")
    Fs.copyFileSync(bin, Path.join(dir, "aap.mjs"))
    const result = spawnSync(process.execPath, [Path.join(dir, "aap.mjs"), "--version"], { encoding: "utf8" })
    assert.strictEqual(result.status, 1)
    assert.match(result.stderr, /run `pnpm build`/)
    assert.strictEqual(result.stderr.trim().split("\n").length, 1)
  })

  it("--version and --help load only the entry file; client commands load no AWS SDK", () => {
    const meta = JSON.parse(Fs.readFileSync(Path.join(dist, "meta.json"), "utf8"))
    const outputs: Record<
      string,
      { bytes: number; imports: Array<{ path: string; kind: string }>; inputs: Record<string, unknown> }
    > = meta.outputs
    const closure = (entry: string) => {
      const seen = new Set<string>()
      const visit = (f: string) => {
        if (seen.has(f) || outputs[f] === undefined) return
        seen.add(f)
        for (const i of outputs[f]?.imports ?? []) if (i.kind === "import-statement") visit(i.path)
      }
      visit(entry)
      return [...seen]
    }
    const eager = closure("dist/aap.mjs")
    assert.isBelow(
      eager.reduce((n, f) => n + (outputs[f]?.bytes ?? 0), 0),
      16 * 1024
    )
    const eagerInputs = eager.flatMap((f) => Object.keys(outputs[f]?.inputs ?? {}))
    assert.isFalse(
      eagerInputs.some((i) => i.includes("node_modules")),
      eagerInputs.join(", ")
    )
    const client = Object.keys(outputs).find((f) => /chunks\/Client-.*\.mjs$/.test(f)) ?? ""
    const inputs = closure(client).flatMap((f) => Object.keys(outputs[f]?.inputs ?? {}))
    assert.isAbove(inputs.length, 10)
    assert.isFalse(
      inputs.some(
        (i) => i.includes("@aws-sdk/") || i.includes("dynalite") || i.includes("apps/broker/src/Broker.ts")
      )
    )
    assert.isTrue(Object.keys(outputs).includes("dist/daemon.mjs"))
  })
})

describe("aap keys (local keyring)", () => {
  it("init creates a 0600 keyring, is idempotent; rotate adds a primary; status shows no key material", () => {
    const home = tempDir("aap-keys-")
    const missing = aap(["keys", "status", "--home", home])
    assert.strictEqual(missing.code, 1)
    assert.include(missing.stderr, "run aap keys init")
    const init = aap(["keys", "init", "--home", home, "--json"])
    assert.strictEqual(init.code, 0, init.stderr)
    const created = JSON.parse(init.stdout)
    assert.isTrue(created.created)
    assert.strictEqual(created.masterKeys.length, 1)
    const file = Path.join(home, "keys", "keyring.json")
    assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
    assert.isFalse(JSON.parse(aap(["keys", "init", "--home", home, "--json"]).stdout).created)
    const rotated = JSON.parse(aap(["keys", "rotate", "--home", home, "--json"]).stdout)
    assert.strictEqual(rotated.masterKeys.length, 2)
    assert.notStrictEqual(rotated.primaryKeyId, created.primaryKeyId)
    const status = aap(["keys", "status"], { AAP_HOME: home })
    assert.strictEqual(status.code, 0, status.stderr)
    assert.include(status.stdout, `primary key  ${rotated.primaryKeyId}`)
    const material = JSON.stringify(JSON.parse(Fs.readFileSync(file, "utf8")))
    for (const m of material.match(/"[A-Za-z0-9+/_-]{40,}={0,2}"/g) ?? []) {
      assert.notInclude(status.stdout + init.stdout, m.slice(1, -1))
    }
    Fs.chmodSync(file, 0o644)
    const open = aap(["keys", "status", "--home", home])
    assert.strictEqual(open.code, 1)
    assert.strictEqual(open.stderr.trim().split("\n").length, 1)
  })
})

describe("aap serve / aap worker (the daemon bundle)", () => {
  it("worker starts on a fresh home, serves /healthz and stops cleanly on SIGTERM; bad flags exit 2", async () => {
    const live = aapLive(["worker", "--home", tempDir("aap-worker-")], { AAP_WORKER_LISTEN: "127.0.0.1:0" })
    await live.waitFor(/worker listening on (http:\/\/\S+)/, 60_000)
    const url = /worker listening on (http:\/\/\S+)/.exec(live.stdout() + live.stderr())?.[1] ?? ""
    const health = await fetch(`${url}/healthz`)
    assert.strictEqual(health.status, 200)
    assert.notInclude(live.stderr(), "NodeVersionSupportWarning")
    live.child.kill("SIGTERM")
    const r = await live.done
    assert.strictEqual(r.code, 0, r.stderr)
    const bad = aap(["serve", "--bogus"])
    assert.strictEqual(bad.code, 2)
    assert.strictEqual(bad.stderr, "aap serve: unknown argument --bogus (see aap serve --help)\n")
  })
})
