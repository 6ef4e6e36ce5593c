/**
 * Audited credential deliveries per second through the embedded broker (issue 8), next to two
 * baselines measured in the same run: a trivial endpoint on the same HttpApi stack (`/healthz`,
 * through every middleware) and a bare `node:http` server. 32 connections (autocannon).
 *
 *   pnpm --filter @aap/broker bench            # table
 *   pnpm --filter @aap/broker bench -- --json  # rows {figure, unit, value, baseline, ratio, target, met}
 *   ... --duration 10 --profile                # seconds per run; CPU profile of the broker
 *
 * Each server runs in its own child process (the load generator stays out of its event loop);
 * RSS is the broker child's VmRSS sampled during the delivery run. CPU per request is the
 * broker child's user+system CPU time over the run (from /proc) divided by the requests it
 * answered: unlike req/s it hardly moves when other processes compete for the cores.
 *
 * The pair run is what `aap exec` does: request a session, take its credential, end the
 * session (the agent revokes its own). At most `connections` sessions are live at a time, so
 * the broker's live-session limit is set just above that (`AAP_MAX_LIVE_SESSIONS_PER_AGENT`).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import autocannon from "autocannon"

const args = process.argv.slice(2)
const json = args.includes("--json")
const profile = args.includes("--profile")
const durationArg = args.indexOf("--duration")
const duration = durationArg >= 0 ? Number(args[durationArg + 1]) : 10
const connectionsArg = args.indexOf("--connections")
const connections = connectionsArg >= 0 ? Number(args[connectionsArg + 1]) : 32
/** `--deliveries-only`: skip the baselines and the pair run (for profiling the hot path). */
const deliveriesOnly = args.includes("--deliveries-only")
/** `--pairs-only`: skip the baselines; `--profile` summarises the pair run instead of the deliveries (which still run). */
const pairsOnly = args.includes("--pairs-only")

const root = Path.resolve(import.meta.dirname, "../../..")
const catalog = Path.join(root, "examples/catalog.yaml")
const log = (s: string) => {
  if (!json) process.stderr.write(`${s}\n`)
}

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    import("node:net").then((net) => {
      const srv = net.createServer()
      srv.listen(0, "127.0.0.1", () => {
        const address = srv.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        srv.close(() => resolve(port))
      })
    })
  })

const waitFor = async (url: string, ms = 60_000) => {
  const until = Date.now() + ms
  for (;;) {
    try {
      const r = await fetch(url)
      if (r.ok) return
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error(`${url} did not become ready`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** User + system CPU seconds of a process so far (/proc/<pid>/stat, clock ticks of 10 ms). */
const cpuOf = (pid: number): number => {
  const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const rssOf = (pid: number): number => {
  const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return m ? Number(m[1]) * 1024 : 0
}

interface Run {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
  readonly non2xx: number
  readonly rssMax?: number
  /** Broker CPU milliseconds per answered request (when the pid is known). */
  readonly cpuMsPerRequest?: number
  /** Broker CPU seconds over wall seconds during the run (1 = one core busy all the time). */
  readonly cpuShare?: number
}

const load = (opts: autocannon.Options, pid?: number): Promise<Run> =>
  new Promise((resolve, reject) => {
    let rssMax = 0
    const timer =
      pid === undefined ? undefined : setInterval(() => (rssMax = Math.max(rssMax, rssOf(pid))), 250)
    const cpu0 = pid === undefined ? 0 : cpuOf(pid)
    const wall0 = performance.now()
    autocannon({ connections, duration, ...opts }, (err, result) => {
      if (timer) clearInterval(timer)
      if (err) return reject(err)
      const cpu = pid === undefined ? 0 : cpuOf(pid) - cpu0
      const wall = (performance.now() - wall0) / 1000
      resolve({
        ...(pid === undefined
          ? {}
          : {
              cpuMsPerRequest: (1000 * cpu) / Math.max(1, result.requests.total ?? 0),
              cpuShare: cpu / wall
            }),
        rps: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        errors: result.errors + result.timeouts,
        non2xx: result.non2xx,
        ...(pid === undefined ? {} : { rssMax })
      })
    })
  })

const post = async (url: string, token: string | undefined, body: unknown, method = "POST") => {
  const r = await fetch(url, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body)
  })
  const text = await r.text()
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${text}`)
  return JSON.parse(text) as Record<string, unknown>
}

const children: Array<ChildProcess> = []
const stopAll = () => {
  for (const c of children) c.kill("SIGTERM")
}
process.on("exit", stopAll)

const main = async () => {
  // --- bare node:http ---
  const barePort = await freePort()
  const bare = spawn(
    process.execPath,
    [
      "-e",
      `require("node:http").createServer((q,s)=>{s.setHeader("content-type","application/json");s.end('{"status":"ok"}')}).listen(${barePort},"127.0.0.1")`
    ],
    { stdio: "ignore" }
  )
  children.push(bare)
  await waitFor(`http://127.0.0.1:${barePort}/`)

  // --- the embedded broker ---
  const home = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-bench-"))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const profDir = Path.join(home, "prof")
  const broker = spawn(
    process.execPath,
    [...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []), "--import", "tsx", "src/main.ts"],
    {
      cwd: Path.resolve(import.meta.dirname, ".."),
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...process.env,
        AAP_HOME: home,
        AAP_LISTEN: `127.0.0.1:${port}`,
        AAP_CATALOG: catalog,
        AAP_LOG_LEVEL: "info",
        // the pair run holds at most one live session per connection
        AAP_MAX_LIVE_SESSIONS_PER_AGENT: String(connections + 8),
        AAP_SESSION_REQUESTS_PER_MINUTE: "1000000"
      }
    }
  )
  children.push(broker)
  await waitFor(`${url}/readyz`)
  const op = Fs.readFileSync(Path.join(home, "operator.token"), "utf8").trim()
  await post(
    `${url}/v1/wallets/codex/secrets/openrouter%2Fapi-key`,
    op,
    { value: "sk-or-bench-value" },
    "PUT"
  )
  const { code } = await post(`${url}/v1/agents/codex/link-codes`, op, {})
  const { token: agent } = await post(`${url}/v1/link-codes/redeem`, undefined, { code })
  const session = await post(`${url}/v1/sessions`, String(agent), {
    capability: "openrouter-chat",
    ttlSeconds: 3600
  })
  const deliverPath = `/v1/sessions/${String(session.id)}/credentials`
  const agentHeaders = { authorization: `Bearer ${String(agent)}`, "content-type": "application/json" }

  // warm-up
  await load({ url: `${url}${deliverPath}`, method: "POST", headers: agentHeaders, body: "{}", duration: 2 })

  const skipped: Run = { rps: Number.NaN, p50: Number.NaN, p99: Number.NaN, errors: 0, non2xx: 0, rssMax: 0 }
  log(`bare node:http, ${duration}s x ${connections} connections ...`)
  const bareRun = deliveriesOnly || pairsOnly ? skipped : await load({ url: `http://127.0.0.1:${barePort}/` })
  log("trivial HttpApi endpoint (GET /healthz on the broker) ...")
  const trivial = deliveriesOnly || pairsOnly ? skipped : await load({ url: `${url}/healthz` }, broker.pid)
  log("audited deliveries (POST /v1/sessions/{id}/credentials, low-tier bearer-token) ...")
  // CLOCK_MONOTONIC in µs, the clock of the .cpuprofile's timestamps: the summary covers this run only
  const deliveriesFrom = Number(process.hrtime.bigint() / 1000n)
  const deliveries = await load(
    { url: `${url}${deliverPath}`, method: "POST", headers: agentHeaders, body: "{}" },
    broker.pid
  )
  const deliveriesTo = Number(process.hrtime.bigint() / 1000n)
  const metricsText = await (await fetch(`${url}/metrics`)).text()
  const metric = (name: string) =>
    Number(
      new RegExp(`^${name}\\{outcome="success"\\} ([0-9.e+-]+)$`, "m").exec(metricsText)?.[1] ?? Number.NaN
    )
  const appendMeanMs =
    (1000 * metric("aap_audit_append_duration_seconds_sum")) /
    metric("aap_audit_append_duration_seconds_count")
  log("session request + delivery pairs ...")
  let pairs = 0
  const pairRequests = (): Array<autocannon.Request> => [
    {
      method: "POST",
      path: "/v1/sessions",
      headers: agentHeaders,
      body: JSON.stringify({ capability: "openrouter-chat" }),
      onResponse: (status, body, context) => {
        if (status === 201) context.session = JSON.parse(body).id
      }
    },
    {
      method: "POST",
      headers: agentHeaders,
      body: "{}",
      setupRequest: (req, context) => ({
        ...req,
        path: `/v1/sessions/${String(context.session)}/credentials`
      }),
      onResponse: (status) => {
        if (status === 200) pairs++
      }
    },
    {
      // the agent ends its session, as `aap exec` does when CMD exits
      method: "POST",
      headers: agentHeaders,
      body: "{}",
      setupRequest: (req, context) => ({
        ...req,
        path: `/v1/sessions/${String(context.session)}/revoke`
      })
    }
  ]
  // the session path (request, revoke) is cold until now: warm it up like the deliveries
  if (!deliveriesOnly) await load({ url, requests: pairRequests(), duration: 2 })
  pairs = 0
  const pairsFrom = Number(process.hrtime.bigint() / 1000n)
  const pairRun = deliveriesOnly ? skipped : await load({ url, requests: pairRequests() }, broker.pid)
  const pairsTo = Number(process.hrtime.bigint() / 1000n)
  const pairsPerSecond = pairs / duration

  // audit appended for every delivery?
  const verify = (await (
    await fetch(`${url}/v1/audit/verify`, { headers: { authorization: `Bearer ${op}` } })
  ).json()) as {
    ok: boolean
    streams: Array<{ records: number }>
  }

  broker.kill("SIGINT")
  await new Promise((r) => broker.once("exit", r))
  bare.kill("SIGTERM")

  const rows = [
    {
      figure: `audited deliveries/s (low-tier bearer-token, ${connections} conn)`,
      unit: "req/s",
      value: Math.round(deliveries.rps),
      baseline: Math.round(trivial.rps),
      ratio: round(deliveries.rps / trivial.rps),
      target: ">= 0.8 x trivial HttpApi endpoint",
      met: deliveries.rps >= 0.8 * trivial.rps
    },
    {
      figure: "audited deliveries/s absolute",
      unit: "req/s",
      value: Math.round(deliveries.rps),
      baseline: 1500,
      ratio: round(deliveries.rps / 1500),
      target: ">= 1500/s",
      met: deliveries.rps >= 1500
    },
    {
      figure: "delivery p99 latency",
      unit: "ms",
      value: deliveries.p99,
      baseline: trivial.p99,
      ratio: round(deliveries.p99 / Math.max(trivial.p99, 1)),
      target: "<= 50 ms",
      met: deliveries.p99 <= 50
    },
    {
      figure: "delivery p50 latency",
      unit: "ms",
      value: deliveries.p50,
      baseline: trivial.p50,
      ratio: round(deliveries.p50 / Math.max(trivial.p50, 1)),
      target: "report",
      met: true
    },
    {
      figure: "deliveries vs bare node:http",
      unit: "req/s",
      value: Math.round(deliveries.rps),
      baseline: Math.round(bareRun.rps),
      ratio: round(deliveries.rps / bareRun.rps),
      target: "report",
      met: true
    },
    {
      figure: "trivial HttpApi endpoint vs bare node:http",
      unit: "req/s",
      value: Math.round(trivial.rps),
      baseline: Math.round(bareRun.rps),
      ratio: round(trivial.rps / bareRun.rps),
      target: "report",
      met: true
    },
    {
      figure: "broker CPU per delivery",
      unit: "ms",
      value: round3(deliveries.cpuMsPerRequest ?? Number.NaN),
      baseline: round3(trivial.cpuMsPerRequest ?? Number.NaN),
      ratio: round((deliveries.cpuMsPerRequest ?? Number.NaN) / (trivial.cpuMsPerRequest ?? Number.NaN)),
      target: "report (baseline: per trivial request)",
      met: true
    },
    {
      figure: "broker CPU share during deliveries (1 = one core)",
      unit: "cores",
      value: round(deliveries.cpuShare ?? Number.NaN),
      baseline: round(trivial.cpuShare ?? Number.NaN),
      ratio: round((deliveries.cpuShare ?? Number.NaN) / (trivial.cpuShare ?? Number.NaN)),
      target: "report (baseline: trivial run)",
      met: true
    },
    {
      figure: "session request + delivery pairs/s (request, deliver, end the session)",
      unit: "pairs/s",
      value: Math.round(pairsPerSecond),
      baseline: Math.round(deliveries.rps),
      ratio: round(pairsPerSecond / deliveries.rps),
      target: "report",
      met: true
    },
    {
      figure: "broker RSS during deliveries (max)",
      unit: "MiB",
      value: Math.round((deliveries.rssMax ?? 0) / 1048576),
      baseline: Math.round((trivial.rssMax ?? 0) / 1048576),
      ratio: round((deliveries.rssMax ?? 0) / Math.max(trivial.rssMax ?? 1, 1)),
      target: "report",
      met: true
    },
    {
      figure: "mean durable audit append latency (group commit), whole run so far",
      unit: "ms",
      value: round(appendMeanMs),
      baseline: deliveries.p50,
      ratio: round(appendMeanMs / Math.max(deliveries.p50, 1)),
      target: "report (share of delivery p50)",
      met: true
    },
    {
      figure: "failed responses during the delivery run",
      unit: "count",
      value: deliveries.errors + deliveries.non2xx,
      baseline: 0,
      ratio: 0,
      target: "0",
      met: deliveries.errors + deliveries.non2xx === 0
    },
    {
      figure: "audit chain verifies after the runs",
      unit: "records",
      value: verify.streams.reduce((n, s) => n + s.records, 0),
      baseline: 0,
      ratio: 0,
      target: "ok",
      met: verify.ok
    }
  ]
  if (json) {
    for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
  } else {
    console.table(rows)
    log(
      `pair run: ${pairRun.non2xx} non-2xx, ${pairRun.errors} errors, ${round3(pairRun.cpuMsPerRequest ?? Number.NaN)} ms broker CPU per request`
    )
  }
  if (profile && pairsOnly) summariseProfile(profDir, pairsFrom, pairsTo, "pair")
  else if (profile) summariseProfile(profDir, deliveriesFrom, deliveriesTo, "delivery")
}

const round = (n: number) => Math.round(n * 100) / 100
const round3 = (n: number) => Math.round(n * 1000) / 1000

/** Self time by package and function from the broker's .cpuprofile during one run (delivery or pair), top 25. */
const summariseProfile = (dir: string, from: number, to: number, run: string) => {
  // the main thread's profile (tsx's loader thread writes a second, smaller one)
  const file = Fs.readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .sort((a, b) => Fs.statSync(Path.join(dir, b)).size - Fs.statSync(Path.join(dir, a)).size)[0]
  if (!file) return log("no CPU profile written")
  // kept with the profile for further analysis of the same window
  Fs.writeFileSync(Path.join(dir, "window.json"), JSON.stringify({ file, from, to }))
  log(`profile: ${Path.join(dir, file)} (${run} run ${from}..${to} µs)`)
  const prof = JSON.parse(Fs.readFileSync(Path.join(dir, file), "utf8")) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>
    samples: Array<number>
    timeDeltas: Array<number>
    startTime: number
  }
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  const byPackage = new Map<string, number>()
  let at = prof.startTime
  let total = 0
  for (let i = 0; i < prof.samples.length; i++) {
    at += prof.timeDeltas[i] ?? 0
    if (at < from || at > to) continue
    total++
    const n = byId.get(prof.samples[i] ?? -1)
    if (!n) continue
    const url = n.callFrame.url
    const pkg =
      /node_modules\/\.pnpm\/([^/]+)/.exec(url)?.[1]?.replace(/@\d.*$/, "") ??
      /\/work\/main\/([^/]+\/[^/]+)/.exec(url)?.[1] ??
      (url === "" ? `(${n.callFrame.functionName || "native"})` : "node:internal")
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + 1)
    const key = `${n.callFrame.functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber}`
    self.set(key, (self.get(key) ?? 0) + 1)
  }
  const top = (m: Map<string, number>, k: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, n]) => ({ name, pct: round((100 * n) / total) }))
  console.log(`CPU self time by package (broker, during the ${run} run: ${total} samples):`)
  console.table(top(byPackage, 15))
  console.log("CPU self time by function (top 25):")
  console.table(top(self, 25))
}

main().catch((e) => {
  console.error(e)
  stopAll()
  process.exit(1)
})
