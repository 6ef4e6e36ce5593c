/**
 * A worker process for the convergence-after-kill tests of the jobs with an external
 * dependency: opens the on-disk engine, the keyring file and the JSONL audit log
 * (`jobStacks.ts`), and runs one job once, until done or killed.
 *
 *   node --import tsx jobChild.ts '<json: Spec>'
 */
import { Effect } from "effect"
import * as AuditShipping from "../../src/AuditShipping.js"
import * as StsDenyList from "../../src/StsDenyList.js"
import * as UpstreamRevocation from "../../src/UpstreamRevocation.js"
import * as JobStacks from "./jobStacks.js"

export type Spec = JobStacks.Durable &
  (
    | { readonly job: "revocation"; readonly openRouter: string }
    | { readonly job: "shipping"; readonly s3: string; readonly maxRecordsPerObject: number }
    | { readonly job: "sts-deny"; readonly iam: string }
  )

const spec = JSON.parse(process.argv[2] ?? "null") as Spec | null
if (spec === null || typeof spec !== "object") {
  process.stderr.write("usage: jobChild.ts '<json spec>'\n")
  process.exit(2)
}

const run: Effect.Effect<string, unknown> =
  spec.job === "revocation"
    ? UpstreamRevocation.run({ backoffBase: "10 millis" }).pipe(
        Effect.map((r) => JSON.stringify(r)),
        Effect.provide(JobStacks.revocation(spec, "child", spec.openRouter))
      )
    : spec.job === "shipping"
      ? AuditShipping.run({ maxRecordsPerObject: spec.maxRecordsPerObject }).pipe(
          Effect.map((r) => JSON.stringify(r)),
          Effect.provide(JobStacks.shipping(spec, spec.s3))
        )
      : StsDenyList.run().pipe(
          Effect.map((r) => JSON.stringify(r)),
          Effect.provide(JobStacks.stsDeny(spec, spec.iam))
        )

Effect.runPromise(run.pipe(Effect.tap((r) => Effect.sync(() => process.stdout.write(`done ${r}\n`))))).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${String(e)}\n`)
    process.exit(1)
  }
)
