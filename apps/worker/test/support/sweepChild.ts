/**
 * A worker process for the convergence-after-kill test: opens the on-disk engine, the keyring
 * file and the JSONL audit log, and runs one job until done (or until it is killed).
 *
 *   tsx sweepChild.ts <job: sweep> <dataDir> <keyringPath> <auditDir> <tablePrefix>
 */
import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { Effect, Layer } from "effect"
import * as ExpirySweep from "../../src/ExpirySweep.js"
import { coordination, jsonlAudit } from "./stack.js"

const [job, dataDir, keyringPath, auditDir, tablePrefix] = process.argv.slice(2)
if (job !== "sweep" || !dataDir || !keyringPath || !auditDir || !tablePrefix) {
  process.stderr.write("usage: sweepChild.ts sweep <dataDir> <keyringPath> <auditDir> <tablePrefix>\n")
  process.exit(2)
}
const keys = KeyProvider.layerLocalKeyring({ path: keyringPath })
const stack = coordination(keys, jsonlAudit(auditDir, "child").pipe(Layer.provide(keys))).pipe(
  Layer.provide(DynamoDb.layerEmbedded({ dir: dataDir, tablePrefix }))
)
Effect.runPromise(
  ExpirySweep.run({ batchSize: 5 }).pipe(
    Effect.tap((r) => Effect.sync(() => process.stdout.write(`done ${r.expired}\n`))),
    Effect.provide(stack)
  )
).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${String(e)}\n`)
    process.exit(1)
  }
)
