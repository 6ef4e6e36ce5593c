/**
 * Soak: `aap serve` (embedded store, local keyring, JSONL audit) under mixed load for N seconds
 * (default 60): 8 clients, each looping session request → credential delivery → session read →
 * revoke as an agent, with operator traffic mixed in (secret writes and listings, audit reads,
 * /metrics, /healthz) and requests that must be refused (404, 401). Reports the broker's RSS at
 * the start (ready, before load), after the first 10 s, at the end and the maximum, the request
 * count, the error count (5xx and transport errors), unexpected statuses, and whether the audit
 * chain verifies afterwards. Writes bench/SOAK.md.
 *
 * `AAP_SOAK_NODE_ARGS` passes node flags to the broker process only (node refuses `--cpu-prof`
 * in NODE_OPTIONS), e.g. `AAP_SOAK_NODE_ARGS="--heapsnapshot-signal=SIGUSR2 --cpu-prof"`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { machine, type Row, round } from "./rows.js"

const CLIENTS = 8

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = Net.createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address()
      const port = typeof a === "object" && a !== null ? a.port : 0
      srv.close(() => resolve(port))
    })
  })

const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(Fs.readFileSync(`/proc/${pid}/status`, "utf8"))
  return m ? round(Number(m[1]) / 1024, 1) : Number.NaN
}

interface Reply {
  readonly status: number
  readonly json: Record<string, unknown>
}

export const soak = async (options: {
  readonly root: string
  readonly seconds: number
  readonly log: (s: string) => void
}): Promise<Array<Row>> => {
  const { root, seconds, log } = options
  const home = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-soak-"))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  // `aap serve` from the built CLI; the broker's sources through tsx while the CLI is not built.
  const built =
    Fs.existsSync(Path.join(root, "apps/cli/dist/aap.mjs")) &&
    (Fs.existsSync(Path.join(root, "apps/cli/dist/daemon.mjs")) ||
      Fs.existsSync(Path.join(root, "apps/cli/dist/serve.mjs")))
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...(process.env.AAP_SOAK_NODE_ARGS ?? "").split(" ").filter((a) => a !== ""),
      ...(built ? [Path.join(root, "apps/cli/bin/aap.mjs"), "serve"] : ["--import", "tsx", "src/main.ts"])
    ],
    {
      cwd: built ? root : Path.join(root, "apps/broker"),
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...process.env,
        AAP_HOME: home,
        AAP_LISTEN: `127.0.0.1:${port}`,
        AAP_CATALOG: Path.join(root, "examples/catalog.yaml"),
        AAP_LOG_LEVEL: "warning",
        AAP_MAX_LIVE_SESSIONS_PER_AGENT: "1000",
        AAP_SESSION_REQUESTS_PER_MINUTE: "1000000"
      }
    }
  )
  let stderr = ""
  child.stderr?.on("data", (b: Buffer) => {
    stderr += b.toString("utf8")
  })
  const pid = child.pid ?? 0
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`aap serve exited: ${stderr}`)
      const ok = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false
      )
      if (ok) break
      if (i > 600) throw new Error(`aap serve not ready after 60 s: ${stderr}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    const call = async (method: string, path: string, token?: string, body?: unknown): Promise<Reply> => {
      const r = await fetch(url + path, {
        method,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { "content-type": "application/json" })
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      const text = await r.text()
      let json: Record<string, unknown> = {}
      try {
        json = JSON.parse(text) as Record<string, unknown>
      } catch {
        json = {}
      }
      return { status: r.status, json }
    }
    const op = Fs.readFileSync(Path.join(home, "operator.token"), "utf8").trim()
    await call("PUT", "/v1/wallets/codex/secrets/openrouter%2Fapi-key", op, { value: "sk-or-soak" })
    const { json: invite } = await call("POST", "/v1/agents/codex/link-codes", op, {})
    const { json: enrolled } = await call("POST", "/v1/link-codes/redeem", undefined, { code: invite.code })
    const agent = String(enrolled.token)

    const rssStart = rssMiB(pid)
    let rssWarm = rssStart
    let rssMax = rssStart
    let requests = 0
    let errors = 0
    let unexpected = 0
    const samples: Array<string> = []
    const expect = async (want: ReadonlyArray<number>, p: Promise<Reply>): Promise<Reply | undefined> => {
      requests++
      try {
        const r = await p
        if (r.status >= 500) {
          errors++
          if (samples.length < 5) samples.push(`${r.status} ${JSON.stringify(r.json)}`)
        } else if (!want.includes(r.status)) {
          unexpected++
          if (samples.length < 5) samples.push(`unexpected ${r.status} ${JSON.stringify(r.json)}`)
        }
        return r
      } catch (e) {
        errors++
        if (samples.length < 5) samples.push(String(e))
        return undefined
      }
    }
    const until = Date.now() + seconds * 1000
    const sampler = setInterval(() => {
      const rss = rssMiB(pid)
      rssMax = Math.max(rssMax, rss)
    }, 500)
    const warm = setTimeout(() => {
      rssWarm = rssMiB(pid)
    }, 10_000)
    log(`soak: ${seconds} s, ${CLIENTS} clients against ${url} (broker pid ${pid}, RSS ${rssStart} MiB)`)
    const client = async (n: number) => {
      for (let i = 0; Date.now() < until; i++) {
        const s = await expect([201], call("POST", "/v1/sessions", agent, { capability: "openrouter-chat" }))
        const id = String(s?.json.id ?? "missing")
        await expect([200], call("POST", `/v1/sessions/${id}/credentials`, agent, {}))
        await expect([200], call("GET", `/v1/sessions/${id}`, agent))
        await expect([200], call("POST", `/v1/sessions/${id}/revoke`, agent, {}))
        await expect([404], call("GET", `/v1/sessions/ses_${"0".repeat(26)}`, agent))
        await expect([401], call("GET", "/v1/catalog", "aap_agt_wrong"))
        if (n === 0) {
          await expect([200], call("GET", "/v1/wallets/codex/secrets", op))
          await expect([200], call("GET", "/v1/audit?limit=20", op))
          await expect([200], call("GET", "/metrics"))
          await expect([200], call("GET", "/healthz"))
          if (i % 20 === 0) {
            await expect(
              [200],
              call("PUT", `/v1/wallets/codex/secrets/soak%2Fs${i % 100}`, op, { value: `v${i}` })
            )
          }
        }
      }
    }
    const t0 = performance.now()
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)))
    const elapsed = (performance.now() - t0) / 1000
    clearInterval(sampler)
    clearTimeout(warm)
    const rssEnd = rssMiB(pid)
    const verify = await call("GET", "/v1/audit/verify", op)
    const records = ((verify.json.streams ?? []) as Array<{ records?: number }>).reduce(
      (n, s) => n + (s.records ?? 0),
      0
    )
    const alive = child.exitCode === null
    for (const s of samples) log(`   sample problem: ${s}`)
    const rows: Array<Row> = [
      {
        figure: `soak: requests in ${seconds} s (${CLIENTS} clients, mixed)`,
        unit: "req/s",
        value: round(requests / elapsed, 0),
        baseline: requests,
        ratio: 0,
        target: "report (baseline = total requests)",
        met: true
      },
      {
        figure: "soak: errors (5xx + transport)",
        unit: "count",
        value: errors,
        baseline: requests,
        ratio: round(errors / Math.max(requests, 1), 4),
        target: "0",
        met: errors === 0
      },
      {
        figure: "soak: unexpected statuses (not 5xx)",
        unit: "count",
        value: unexpected,
        baseline: requests,
        ratio: round(unexpected / Math.max(requests, 1), 4),
        target: "0",
        met: unexpected === 0
      },
      {
        figure: "soak: broker RSS at the end vs at the start (ready, before load)",
        unit: "MiB",
        value: rssEnd,
        baseline: rssStart,
        ratio: round(rssEnd / rssStart),
        target: "report",
        met: true
      },
      {
        figure: "soak: broker RSS at the end vs after 10 s of load (growth = leak suspect)",
        unit: "MiB",
        value: rssEnd,
        baseline: rssWarm,
        ratio: round(rssEnd / rssWarm),
        target: "<= 1.5 x",
        met: rssEnd <= 1.5 * rssWarm
      },
      {
        figure: "soak: broker RSS maximum",
        unit: "MiB",
        value: rssMax,
        baseline: rssStart,
        ratio: round(rssMax / rssStart),
        target: "report",
        met: true
      },
      {
        figure: "soak: audit chain verifies afterwards",
        unit: "records",
        value: records,
        baseline: 0,
        ratio: 0,
        target: "ok",
        met: verify.status === 200 && verify.json.ok === true
      },
      {
        figure: "soak: broker still running",
        unit: "bool",
        value: alive ? 1 : 0,
        baseline: 1,
        ratio: alive ? 1 : 0,
        target: "1",
        met: alive
      }
    ]
    const m = machine()
    const md = [
      "# Soak results",
      "",
      `Written by \`pnpm bench soak\` (bench/src/soak.ts) on ${new Date().toISOString()}: ${seconds} s of mixed load`,
      `from ${CLIENTS} clients against ${built ? "`aap serve`" : "the broker (apps/broker/src/main.ts via tsx; the CLI was not built)"} (embedded dynalite on disk, local keyring, JSONL audit).`,
      "",
      `Machine: ${m.cpus} CPUs (${m.model}), ${m.memoryGiB} GiB, Node ${m.node}; load average at the end`,
      `${m.loadAverage.join(" / ")} — a shared machine, other engineers' builds and tests ran at the same time.`,
      "",
      "| figure | value | baseline | ratio | unit | target | met |",
      "|---|--:|--:|--:|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.figure} | ${r.value} | ${r.baseline} | ${r.ratio} | ${r.unit} | ${r.target} | ${r.met ? "yes" : "**no**"} |`
      ),
      "",
      ...(samples.length > 0
        ? ["Sample problems:", "", ...samples.map((s) => `- \`${s.slice(0, 300)}\``), ""]
        : [])
    ].join("\n")
    Fs.writeFileSync(Path.join(root, "bench/SOAK.md"), md)
    log("wrote bench/SOAK.md")
    return rows
  } finally {
    child.kill("SIGTERM")
    await new Promise((r) => {
      if (child.exitCode !== null) r(undefined)
      else child.once("exit", r)
    })
    Fs.rmSync(home, { recursive: true, force: true })
  }
}
