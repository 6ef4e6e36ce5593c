/**
 * A worker process for the convergence-after-kill tests: opens the on-disk engine, the keyring
 * file and the JSONL audit log, and runs one job until done (or until it is killed).
 *
 *   node --import tsx sweepChild.ts <sweep|rewrap> <dataDir> <keyringPath> <auditDir> <tablePrefix>
 */
import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { Effect, Layer } from "effect"
import * as ExpirySweep from "../../src/ExpirySweep.js"
import * as Rewrap from "../../src/Rewrap.js"
import { coordination, jsonlAudit } from "./stack.js"

const [job, dataDir, keyringPath, auditDir, tablePrefix] = process.argv.slice(2)
if ((job !== "sweep" && job !== "rewrap") || !dataDir || !keyringPath || !auditDir || !tablePrefix) {
  process.stderr.write(
    "usage: sweepChild.ts <sweep|rewrap> <dataDir> <keyringPath> <auditDir> <tablePrefix>\n"
  )
  process.exit(2)
}
const keys = KeyProvider.layerLocalKeyring({ path: keyringPath })
const dynamo = DynamoDb.layerEmbedded({ dir: dataDir, tablePrefix })
const stack = Layer.merge(
  coordination(keys, jsonlAudit(auditDir, "child").pipe(Layer.provide(keys))),
  Rewrap.layerVaultTable
).pipe(Layer.provide(dynamo))
const run: Effect.Effect<number, unknown, Layer.Layer.Success<typeof stack>> = job === "sweep"
  ? Effect.map(ExpirySweep.run({ batchSize: 5 }), (r) => r.expired)
  : Effect.map(Rewrap.run({ pageSize: 4 }), (r) => r.moved)
Effect.runPromise(
  run.pipe(
    Effect.tap((n) => Effect.sync(() => process.stdout.write(`done ${n}\n`))),
    Effect.provide(stack)
  )
).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${String(e)}\n`)
    process.exit(1)
  }
)
