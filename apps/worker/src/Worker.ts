/**
 * The worker: every job on its own schedule, in one layer that the standalone process
 * (`aap worker`, `main.ts`) and the embedded broker (in-process) both use.
 *
 * `makeWorker(config)` needs the services the broker already has (sessions, audit, keys,
 * coordination store, catalog). The jobs with an external dependency run only when that
 * dependency is provided, and say once in the log when it is not:
 * - STS deny list: `StsDenyList.Iam`;
 * - audit shipping: `AuditShipping.AuditBucket` (checkpoints are signed by it too);
 * - upstream revocation: `UpstreamRevocation.ProvisionedKeyStore` + `UpstreamRevoker`;
 * - re-wrap: `Rewrap.WrappedDeks`.
 *
 * Every run is caught: a failing run is logged with its error tag, counted in
 * `aap_worker_job_runs_total{outcome="error"}` and retried at the next tick; one job's failure
 * never stops another. The fibers stop when the layer's scope closes (SIGTERM in `main.ts`,
 * broker shutdown when embedded); a run interrupted there is resumed by the next start.
 *
 * @since 0.1.0
 */
import type { CoordinationStore, CurrentCatalog, Sessions } from "@aap/agent-coordination"
import type { AuditKeys, AuditLog, AuditReader, AuditSink } from "@aap/audit"
import type { KeyProvider, SystemKeys } from "@aap/key-custody"
import { Cause, Context, DateTime, Duration, Effect, Layer, Option, Ref, Schedule } from "effect"
import * as AuditShipping from "./AuditShipping.js"
import * as ChainVerification from "./ChainVerification.js"
import * as ExpirySweep from "./ExpirySweep.js"
import * as Progress from "./Progress.js"
import * as Rewrap from "./Rewrap.js"
import * as StsDenyList from "./StsDenyList.js"
import * as UpstreamRevocation from "./UpstreamRevocation.js"
import * as WorkerMetrics from "./WorkerMetrics.js"

export type JobName = "expiry" | "revocation" | "sts-deny" | "rewrap" | "audit-shipping" | "audit-verify"

export const jobNames: ReadonlyArray<JobName> = [
  "expiry",
  "revocation",
  "sts-deny",
  "rewrap",
  "audit-shipping",
  "audit-verify"
]

export interface JobConfig {
  readonly enabled: boolean
  readonly every: Duration.DurationInput
}

export interface WorkerConfig {
  readonly expiry: JobConfig & ExpirySweep.Options
  readonly revocation: JobConfig & UpstreamRevocation.Options
  readonly stsDeny: JobConfig & StsDenyList.Options
  readonly rewrap: JobConfig & Rewrap.Options
  readonly auditShipping: JobConfig & AuditShipping.Options
  readonly auditVerify: JobConfig
}

/** Intervals an operator would pick for one machine; every job idempotent, so overlap is safe. */
export const defaults: WorkerConfig = {
  expiry: { enabled: true, every: "15 seconds", batchSize: 100 },
  revocation: {
    enabled: true,
    every: "30 seconds",
    attemptsPerRun: 3,
    maxAttempts: 10,
    backoffBase: "1 second"
  },
  stsDeny: { enabled: true, every: "30 seconds" },
  rewrap: { enabled: true, every: "10 minutes", pageSize: 100 },
  auditShipping: { enabled: true, every: "5 minutes", maxRecordsPerObject: 10_000 },
  auditVerify: { enabled: true, every: "1 hour" }
}

export interface JobStatus {
  readonly job: JobName
  readonly enabled: boolean
  /** False when the job's external dependency was not provided. */
  readonly configured: boolean
  readonly runs: number
  readonly failures: number
  readonly lastRunAt: Option.Option<string>
  readonly lastSuccessAt: Option.Option<string>
  /** Tag of the last failure, never its message (no secret can leak through here). */
  readonly lastError: Option.Option<string>
}

export interface WorkerShape {
  /** Run one job now (outside its schedule) and report how it went. */
  readonly runOnce: (job: JobName) => Effect.Effect<JobStatus>
  readonly status: Effect.Effect<ReadonlyArray<JobStatus>>
  /** Prometheus text of the worker's metrics. */
  readonly metrics: Effect.Effect<string>
}

export class Worker extends Context.Tag("@aap/worker/Worker")<Worker, WorkerShape>() {}

/** What every worker needs: the services the broker composes anyway. */
export type Requirements =
  | Sessions.Sessions
  | CurrentCatalog.CurrentCatalog
  | CoordinationStore.CoordinationStore
  | SystemKeys.SystemKeys
  | KeyProvider.KeyProvider
  | AuditLog.AuditLog
  | AuditReader.AuditReader
  | AuditSink.AuditSink
  | AuditKeys.AuditKeys

/** Dependencies a job runs with only when they are provided. */
type Optional =
  | StsDenyList.Iam
  | AuditShipping.AuditBucket
  | UpstreamRevocation.ProvisionedKeyStore
  | UpstreamRevocation.UpstreamRevoker
  | Rewrap.WrappedDeks

type JobServices = Requirements | Optional | WorkerMetrics.WorkerMetrics | Progress.Progress

const errorTag = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    return typeof e === "object" && e !== null && "_tag" in e ? String(e._tag) : "Error"
  }
  return Cause.isInterruptedOnly(cause) ? "Interrupted" : "Defect"
}

const mergeConfig = (
  config: Partial<{ [K in keyof WorkerConfig]: Partial<WorkerConfig[K]> }>
): WorkerConfig => ({
  expiry: { ...defaults.expiry, ...config.expiry },
  revocation: { ...defaults.revocation, ...config.revocation },
  stsDeny: { ...defaults.stsDeny, ...config.stsDeny },
  rewrap: { ...defaults.rewrap, ...config.rewrap },
  auditShipping: { ...defaults.auditShipping, ...config.auditShipping },
  auditVerify: { ...defaults.auditVerify, ...config.auditVerify }
})

/**
 * The worker with its job loops forked in the layer's scope. `config` is merged over
 * {@link defaults}. `schedule: false` builds the service without starting the loops (tests,
 * `aap worker --once`).
 */
export const makeWorker = (
  config: Partial<{ [K in keyof WorkerConfig]: Partial<WorkerConfig[K]> }> = {},
  options: { readonly schedule?: boolean } = {}
): Layer.Layer<Worker | WorkerMetrics.WorkerMetrics, never, Requirements> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const c = mergeConfig(config)
      const metrics = yield* WorkerMetrics.make
      const progress = yield* Progress.makeCoordination
      const base = Context.make(WorkerMetrics.WorkerMetrics, metrics).pipe(
        Context.add(Progress.Progress, progress)
      )
      const env = yield* Effect.context<Requirements>()
      const iam = yield* Effect.serviceOption(StsDenyList.Iam)
      const bucket = yield* Effect.serviceOption(AuditShipping.AuditBucket)
      const keyStore = yield* Effect.serviceOption(UpstreamRevocation.ProvisionedKeyStore)
      const revoker = yield* Effect.serviceOption(UpstreamRevocation.UpstreamRevoker)
      const deks = yield* Effect.serviceOption(Rewrap.WrappedDeks)
      const verify = ChainVerification.make()

      // A job whose dependency is absent is never run, so its tag is never looked up.
      let optional = Context.empty() as Context.Context<Optional>
      if (Option.isSome(iam)) optional = Context.add(optional, StsDenyList.Iam, iam.value)
      if (Option.isSome(bucket)) optional = Context.add(optional, AuditShipping.AuditBucket, bucket.value)
      if (Option.isSome(keyStore))
        optional = Context.add(optional, UpstreamRevocation.ProvisionedKeyStore, keyStore.value)
      if (Option.isSome(revoker))
        optional = Context.add(optional, UpstreamRevocation.UpstreamRevoker, revoker.value)
      if (Option.isSome(deks)) optional = Context.add(optional, Rewrap.WrappedDeks, deks.value)
      const all = Context.merge(Context.merge(env, base), optional)

      const jobs: Record<
        JobName,
        {
          readonly config: JobConfig
          readonly configured: boolean
          readonly run: Effect.Effect<unknown, unknown, JobServices>
        }
      > = {
        expiry: { config: c.expiry, configured: true, run: ExpirySweep.run(c.expiry) },
        revocation: {
          config: c.revocation,
          configured: Option.isSome(keyStore) && Option.isSome(revoker),
          run: UpstreamRevocation.run(c.revocation)
        },
        "sts-deny": { config: c.stsDeny, configured: Option.isSome(iam), run: StsDenyList.run(c.stsDeny) },
        rewrap: { config: c.rewrap, configured: Option.isSome(deks), run: Rewrap.run(c.rewrap) },
        "audit-shipping": {
          config: c.auditShipping,
          configured: Option.isSome(bucket),
          run: AuditShipping.run(c.auditShipping)
        },
        "audit-verify": { config: c.auditVerify, configured: true, run: verify }
      }

      const state = yield* Ref.make(
        new Map<JobName, JobStatus>(
          jobNames.map((job) => [
            job,
            {
              job,
              enabled: jobs[job].config.enabled,
              configured: jobs[job].configured,
              runs: 0,
              failures: 0,
              lastRunAt: Option.none(),
              lastSuccessAt: Option.none(),
              lastError: Option.none()
            }
          ])
        )
      )
      const update = (job: JobName, f: (s: JobStatus) => JobStatus) =>
        Ref.modify(state, (m) => {
          const next = f(m.get(job) as JobStatus)
          return [next, new Map(m).set(job, next)]
        })

      const runOnce = (job: JobName): Effect.Effect<JobStatus> =>
        Effect.gen(function* () {
          const spec = jobs[job]
          if (!spec.configured) return (yield* Ref.get(state)).get(job) as JobStatus
          const startedAt = DateTime.formatIso(yield* DateTime.now)
          const exit = yield* spec.run.pipe(Effect.provide(all), Effect.exit)
          const at = yield* DateTime.now
          if (exit._tag === "Success") {
            yield* metrics.inc("aap_worker_job_runs_total", { job, outcome: "ok" })
            yield* metrics.set(
              "aap_worker_job_last_success_seconds",
              Math.floor(DateTime.toEpochMillis(at) / 1000),
              {
                job
              }
            )
            return yield* update(job, (s) => ({
              ...s,
              runs: s.runs + 1,
              lastRunAt: Option.some(startedAt),
              lastSuccessAt: Option.some(DateTime.formatIso(at)),
              lastError: Option.none()
            }))
          }
          const tag = errorTag(exit.cause)
          yield* metrics.inc("aap_worker_job_runs_total", { job, outcome: "error" })
          yield* Effect.logError(`worker job ${job} failed: ${tag}`).pipe(
            Effect.annotateLogs({ job, error: tag })
          )
          return yield* update(job, (s) => ({
            ...s,
            runs: s.runs + 1,
            failures: s.failures + 1,
            lastRunAt: Option.some(startedAt),
            lastError: Option.some(tag)
          }))
        }).pipe(Effect.annotateLogs({ worker: "aap" }))

      if (options.schedule !== false) {
        for (const job of jobNames) {
          const spec = jobs[job]
          if (!spec.config.enabled) continue
          if (!spec.configured) {
            yield* Effect.logInfo(`worker job ${job} is not configured; it will not run`)
            continue
          }
          yield* runOnce(job).pipe(
            Effect.repeat(Schedule.spaced(Duration.decode(spec.config.every))),
            Effect.forkScoped
          )
        }
      }

      return base.pipe(
        Context.add(
          Worker,
          Worker.of({
            runOnce,
            status: Effect.map(Ref.get(state), (m) => [...m.values()]),
            metrics: metrics.render
          })
        ),
        Context.omit(Progress.Progress)
      )
    })
  )
