/**
 * Vault get/put ops/s next to raw GetItem/PutItem through the same DynamoDB client, against the
 * embedded dynalite (in memory), all in one run (issue 4). One request in flight at a time
 * (latency-bound, like one broker request), interleaved rounds, median per variant; each ratio
 * is the median of per-round ratios against the same round's baseline.
 *
 *  - vault get (Query Limit 1 + envelope open, DEK cache) vs raw GetItem of the same item:
 *    target ≥ 0.7; and, to separate the engine from the vault, raw Query Limit 1 vs GetItem and
 *    vault get vs raw Query Limit 1
 *  - vault put (Query latest + seal + conditional PutItem) vs raw PutItem: reported
 *  - SigV4 vs the static local signer (decisions/0022), raw GetItem and vault get
 *  - DynamoDB calls per operation (counted after the timed rounds, by a middleware on the same
 *    client) and the DEK cache's hits and misses, so a ratio is read together with what the
 *    operation actually sent and whether its envelope was opened with a cached key
 *
 * Both variants of a pair read the same item (wallet `bench`, `openrouter/api-key` v1, one
 * version) through the same client with `ConsistentRead`, warmed up alike. By default the
 * engine runs in this process, so CPU time covers client and engine together — the cost of
 * the embedded deployment, where an engine-side difference (dynalite's Query is dearer than
 * its GetItem) counts. `BENCH_ENGINE=process` starts the engine in a child process
 * (`bench/engine.ts`): CPU time is then the client side only, as against a remote DynamoDB.
 *
 *   pnpm bench                 table on stderr
 *   pnpm bench --json          rows {figure, unit, value, baseline, ratio, spread, target, met}
 *   BENCH_SECONDS=3            measured time per variant (default 4 s), split over BENCH_ROUNDS
 *   BENCH_ROUNDS=5             interleaved rounds (default 10); a ratio is the median of the
 *                              per-round ratios (see `row`)
 *   BENCH_ENGINE=process       engine in a child process (default: in this process)
 */

import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { DekCache, KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { GetItemCommand, PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { SecretStore } from "../src/index.js"

const json = process.argv.includes("--json")
const seconds = Number(process.env.BENCH_SECONDS ?? "4")
const rounds = Number(process.env.BENCH_ROUNDS ?? "10")
const engineMode = process.env.BENCH_ENGINE === "process" ? "process" : "in-process"
const value = Redacted.make("sk-or-v1-".padEnd(256, "x"))

const log = (s: string) => {
  if (!json) process.stderr.write(`${s}\n`)
}

/**
 * Ops per second of wall time and per second of this process's CPU time. The engine runs in
 * this process, so CPU time covers client and server; on a shared, loaded machine it is the
 * steadier of the two and the one the ratios are taken from.
 */
const rate = async (op: () => Promise<unknown>, ms: number): Promise<{ wall: number; cpu: number }> => {
  let ops = 0
  const start = performance.now()
  const cpu0 = process.cpuUsage()
  const end = start + ms
  while (performance.now() < end) {
    await op()
    ops++
  }
  const cpu = process.cpuUsage(cpu0)
  return { wall: ops / ((performance.now() - start) / 1000), cpu: ops / ((cpu.user + cpu.system) / 1e6) }
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((x, y) => x - y)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** dynalite in a child process (`bench/engine.ts`); resolves with its endpoint. */
const childEngine = (): Promise<{ readonly endpoint: string; readonly child: ChildProcess }> =>
  new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL("./engine.ts", import.meta.url)), {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "ignore", "inherit", "ipc"]
    })
    child.once("message", (endpoint) => resolve({ endpoint: String(endpoint), child }))
    child.once("exit", (code) => reject(new Error(`engine process exited (${code})`)))
  })

const setup = async (signing: "sigv4" | "static-local") => {
  const engine = engineMode === "process" ? await childEngine() : undefined
  const client =
    engine === undefined
      ? DynamoDb.layerEmbedded({ signing })
      : DynamoDb.layerEndpoint({
          endpoint: engine.endpoint,
          credentials: { accessKeyId: "aap-local", secretAccessKey: Redacted.make("aap-local") },
          signing
        })
  const layer = SecretStore.layerDynamoDb.pipe(
    Layer.provideMerge(Layer.merge(client, DekCache.layer().pipe(Layer.provide(KeyProvider.layerMemory))))
  )
  const runtime = ManagedRuntime.make(layer)
  const { store, db, dekCache } = await runtime.runPromise(
    Effect.all({ store: SecretStore.SecretStore, db: DynamoDb.DynamoDb, dekCache: DekCache.DekCache })
  )
  await runtime.runPromise(store.put("bench", "openrouter/api-key", value))
  const key = { PK: { S: "wallet#bench" }, SK: { S: "secret#openrouter/api-key#v000000001" } }
  let n = 0
  const ops = {
    rawGet: () =>
      db.client.send(new GetItemCommand({ TableName: db.tables.vault, Key: key, ConsistentRead: true })),
    rawQuery: () =>
      db.client.send(
        new QueryCommand({
          TableName: db.tables.vault,
          KeyConditionExpression: "PK = :pk AND begins_with(SK, :prefix)",
          ExpressionAttributeValues: { ":pk": key.PK, ":prefix": { S: "secret#openrouter/api-key#v" } },
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: true
        })
      ),
    vaultGet: () => runtime.runPromise(store.get("bench", "openrouter/api-key")),
    rawPut: () =>
      db.client.send(
        new PutItemCommand({
          TableName: db.tables.vault,
          Item: { PK: { S: "wallet#raw" }, SK: { S: `raw#${n++}` }, blob: { B: new Uint8Array(300) } }
        })
      ),
    vaultPut: () => runtime.runPromise(store.put("bench-put", `put/${n++ % 64}`, value))
  }
  /** DynamoDB requests `op` sends, averaged over `times` calls (outside the timed rounds). */
  const callsPer = async (op: () => Promise<unknown>, times = 20): Promise<number> => {
    let calls = 0
    db.client.middlewareStack.add(
      (next) => (args) => {
        calls++
        return next(args)
      },
      { step: "initialize", name: "benchCallCounter" }
    )
    try {
      for (let i = 0; i < times; i++) await op()
    } finally {
      db.client.middlewareStack.remove("benchCallCounter")
    }
    return calls / times
  }
  const dekStats = () => runtime.runPromise(dekCache.stats)
  return {
    ops,
    callsPer,
    dekStats,
    dispose: async () => {
      await runtime.dispose()
      engine?.child.kill()
    }
  }
}

const main = async () => {
  const sig = await setup("sigv4")
  const local = await setup("static-local")
  const variants = {
    "raw GetItem (sigv4)": sig.ops.rawGet,
    "raw Query Limit 1 (sigv4)": sig.ops.rawQuery,
    "vault get (sigv4)": sig.ops.vaultGet,
    "raw PutItem (sigv4)": sig.ops.rawPut,
    "vault put (sigv4)": sig.ops.vaultPut,
    "raw GetItem (static-local)": local.ops.rawGet,
    "raw Query Limit 1 (static-local)": local.ops.rawQuery,
    "vault get (static-local)": local.ops.vaultGet,
    "raw PutItem (static-local)": local.ops.rawPut,
    "vault put (static-local)": local.ops.vaultPut
  }
  type Variant = keyof typeof variants
  const names = Object.keys(variants) as Array<Variant>
  // Warm up every path (JIT, sockets, DEK cache).
  for (const name of names) await rate(variants[name], 200)
  const samples = new Map<Variant, Array<{ wall: number; cpu: number }>>(names.map((name) => [name, []]))
  const perRound = (seconds * 1000) / rounds
  for (let round = 0; round < rounds; round++) {
    for (const name of names) samples.get(name)!.push(await rate(variants[name], perRound))
  }
  const dek = { sigv4: await sig.dekStats(), "static-local": await local.dekStats() }
  const calls = {
    "raw GetItem": await local.callsPer(local.ops.rawGet),
    "raw Query Limit 1": await local.callsPer(local.ops.rawQuery),
    "vault get (latest)": await local.callsPer(local.ops.vaultGet),
    "vault put": await local.callsPer(local.ops.vaultPut)
  }
  await sig.dispose()
  await local.dispose()
  const m = (name: Variant) => median(samples.get(name)!.map((s) => s.cpu))
  const wall = (name: Variant) => median(samples.get(name)!.map((s) => s.wall))
  /**
   * The ratio is the median of per-round ratios (each round's variant against the baseline's
   * round of the same pass, a few hundred milliseconds apart), not the ratio of two medians:
   * on a shared machine whose load swings between rounds, pairing cancels the swing that a
   * ratio of medians taken at different moments keeps. `spread` is the lowest and highest
   * per-round ratio.
   */
  const row = (figure: string, variant: Variant, base: Variant, target: number | null) => {
    const a = samples.get(variant)!
    const b = samples.get(base)!
    const perRound = a.map((s, i) => s.cpu / b[i]!.cpu)
    const ratio = median(perRound)
    const r3 = (x: number) => Math.round(x * 1000) / 1000
    return {
      figure,
      unit: "ops/s per CPU-second",
      value: Math.round(m(variant)),
      baseline: Math.round(m(base)),
      ratio: r3(ratio),
      spread: [r3(Math.min(...perRound)), r3(Math.max(...perRound))] as const,
      target,
      met: target === null ? null : ratio >= target
    }
  }
  const rows = [
    row(
      "vault get vs raw GetItem (static-local signer, default embedded)",
      "vault get (static-local)",
      "raw GetItem (static-local)",
      0.7
    ),
    row("vault get vs raw GetItem (sigv4)", "vault get (sigv4)", "raw GetItem (sigv4)", 0.7),
    row(
      "raw Query Limit 1 vs raw GetItem (static-local): the engine's cost of the design",
      "raw Query Limit 1 (static-local)",
      "raw GetItem (static-local)",
      null
    ),
    row(
      "vault get vs raw Query Limit 1 (static-local): the vault's own cost",
      "vault get (static-local)",
      "raw Query Limit 1 (static-local)",
      null
    ),
    row(
      "vault put vs raw PutItem (static-local)",
      "vault put (static-local)",
      "raw PutItem (static-local)",
      null
    ),
    row("vault put vs raw PutItem (sigv4)", "vault put (sigv4)", "raw PutItem (sigv4)", null),
    row(
      "raw GetItem: static-local signer vs sigv4",
      "raw GetItem (static-local)",
      "raw GetItem (sigv4)",
      null
    ),
    row("vault get: static-local signer vs sigv4", "vault get (static-local)", "vault get (sigv4)", null)
  ]
  const callRows = Object.entries(calls).map(([figure, value]) => ({
    figure: `${figure}: DynamoDB calls per operation`,
    unit: "DynamoDB calls per op",
    value,
    baseline: null,
    ratio: null,
    target: null,
    met: null
  }))
  if (json) {
    process.stdout.write(`${JSON.stringify([...rows, ...callRows], null, 2)}\n`)
  } else {
    const where =
      engineMode === "process"
        ? "in a child process (CPU: client only)"
        : "in this process (CPU: client + engine)"
    const load = (await import("node:os"))
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")
    log(`load average ${load}; engine ${where}`)
    for (const name of names) {
      log(
        `${name.padEnd(34)} ${Math.round(m(name)).toString().padStart(6)} ops/CPU-s ${Math.round(wall(name)).toString().padStart(6)} ops/s wall`
      )
    }
    log("")
    for (const r of rows) {
      log(
        `${r.figure.padEnd(66)} ${String(r.value).padStart(6)} / ${String(r.baseline).padStart(6)} = ${r.ratio.toFixed(3)}` +
          ` (rounds ${r.spread[0].toFixed(2)}-${r.spread[1].toFixed(2)})` +
          (r.target === null ? "" : `  target ≥ ${r.target} ${r.met ? "met" : "NOT MET"}`)
      )
    }
    log("")
    log(
      `DynamoDB calls per operation: ${Object.entries(calls)
        .map(([name, n]) => `${name} ${n}`)
        .join(", ")}`
    )
    for (const [signing, stats] of Object.entries(dek)) {
      log(`DEK cache (${signing}): ${stats.hits} hits, ${stats.misses} misses, ${stats.entries} entries`)
    }
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
