/**
 * The worker's metrics: counters and gauges with labels, rendered as Prometheus text (format
 * 0.0.4) on `/metrics`. Names are `aap_worker_*`; labels never hold secrets (session ids and
 * stream ids are not secret, key material never reaches here).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"

export type Labels = Readonly<Record<string, string>>

export interface WorkerMetricsShape {
  /** Adds `by` (default 1) to a counter. */
  readonly inc: (name: string, labels?: Labels, by?: number) => Effect.Effect<void>
  /** Sets a gauge. */
  readonly set: (name: string, value: number, labels?: Labels) => Effect.Effect<void>
  /** The current value (0 when never touched); for tests and health checks. */
  readonly get: (name: string, labels?: Labels) => Effect.Effect<number>
  /** Prometheus text exposition. */
  readonly render: Effect.Effect<string>
}

export class WorkerMetrics extends Context.Tag("@aap/worker/WorkerMetrics")<
  WorkerMetrics,
  WorkerMetricsShape
>() {}

/** Help text of every metric the jobs emit (also the documentation in docs/worker.md). */
export const help: Readonly<Record<string, readonly [type: "counter" | "gauge", help: string]>> = {
  aap_worker_job_runs_total: ["counter", "Job runs by job and outcome (ok|error)."],
  aap_worker_job_last_success_seconds: ["gauge", "Epoch seconds of the last successful run, by job."],
  aap_worker_sessions_expired_total: ["counter", "Sessions this worker moved to expired."],
  aap_worker_upstream_revocations_total: [
    "counter",
    "Provisioned upstream keys revoked (outcome=success) or given up on (outcome=gave_up)."
  ],
  aap_worker_upstream_revocation_attempts_total: ["counter", "Upstream revoke calls, by result (ok|error)."],
  aap_worker_sts_deny_entries: ["gauge", "Revoked session tags listed in a role's deny policy, by role."],
  aap_worker_sts_deny_overflow_total: [
    "counter",
    "Deny policy updates that did not fit the inline policy budget and fell back to a token-issue-time cut-off."
  ],
  aap_worker_sts_policy_writes_total: [
    "counter",
    "PutRolePolicy/DeleteRolePolicy calls, by role and operation."
  ],
  aap_worker_rewrap_total: ["counter", "Wrapped DEKs moved to the primary key version."],
  aap_worker_rewrap_remaining: ["gauge", "Wrapped DEKs seen on an older key version in the current pass."],
  aap_worker_audit_checkpoints_total: ["counter", "Checkpoints signed by the worker, by stream."],
  aap_worker_audit_objects_shipped_total: ["counter", "Objects uploaded to the audit bucket, by kind."],
  aap_worker_audit_chain_breaks: [
    "gauge",
    "1 while verification finds a broken stream (by stream and seq), else 0."
  ],
  aap_worker_audit_verify_runs_total: ["counter", "Chain verification runs, by result (ok|broken)."]
}

const escapeLabel = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const keyOf = (labels: Labels | undefined): string =>
  labels === undefined
    ? ""
    : Object.keys(labels)
        .sort()
        .map((k) => `${k}="${escapeLabel(labels[k] ?? "")}"`)
        .join(",")

/** A fresh in-process registry. */
export const make: Effect.Effect<WorkerMetricsShape> = Effect.sync(() => {
  const values = new Map<string, Map<string, number>>()
  const family = (name: string) => {
    let f = values.get(name)
    if (f === undefined) {
      f = new Map()
      values.set(name, f)
    }
    return f
  }
  return WorkerMetrics.of({
    inc: (name, labels, by = 1) =>
      Effect.sync(() => {
        const f = family(name)
        const k = keyOf(labels)
        f.set(k, (f.get(k) ?? 0) + by)
      }),
    set: (name, value, labels) => Effect.sync(() => void family(name).set(keyOf(labels), value)),
    get: (name, labels) => Effect.sync(() => values.get(name)?.get(keyOf(labels)) ?? 0),
    render: Effect.sync(() => {
      const lines: Array<string> = []
      for (const name of [...values.keys()].sort()) {
        const [type, text] = help[name] ?? ["gauge", name]
        lines.push(`# HELP ${name} ${text}`, `# TYPE ${name} ${type}`)
        for (const [k, v] of values.get(name) ?? []) lines.push(`${k === "" ? name : `${name}{${k}}`} ${v}`)
      }
      return `${lines.join("\n")}\n`
    })
  })
})

export const layer: Layer.Layer<WorkerMetrics> = Layer.effect(WorkerMetrics, make)
