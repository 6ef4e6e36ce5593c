/**
 * Structured JSON logs, request ids, trace ids and the broker's Prometheus instruments.
 */
import { randomFillSync, randomUUID } from "node:crypto"
import { Cause, Context, HashMap, Layer, List, Logger, LogLevel, Redacted } from "effect"
import { type Counter, type Histogram, latencyBuckets, makeRegistry, type Registry } from "./metrics.js"

const SENSITIVE_KEY =
  /(token|secret|password|passphrase|authorization|credential|cookie|^value$|plaintext|private)/i

/** Replace anything that may hold secret material before it is serialised into a log line. */
export const redact = (value: unknown, depth = 0): unknown => {
  if (Redacted.isRedacted(value)) return "<redacted>"
  if (value === null || typeof value !== "object") return value
  if (depth > 6) return "[…]"
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1))
  if (value instanceof Error) return { name: value.name, message: value.message }
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    out[k] = SENSITIVE_KEY.test(k) ? "<redacted>" : redact(v, depth + 1)
  }
  return out
}

export type LogSink = (line: string) => void

/** Lines buffered beyond this many UTF-16 units are written at once, without waiting for the turn to end. */
const BATCH_LIMIT = 64 * 1024

/**
 * A sink that joins the lines logged during one event-loop turn into one write, made on the
 * next turn (`setImmediate`) or at once when `BATCH_LIMIT` is reached, and on process exit.
 * Lines keep their order. One write per turn instead of one per line: at 32 concurrent
 * deliveries the access log and the "credential issued" line cost two synchronous `write`
 * syscalls per request otherwise (stdout to a file or a pipe is synchronous on Linux). On
 * `exit` (a return from main, `process.exit`, an uncaught exception or rejection, runMain
 * after SIGINT/SIGTERM) the pending lines are written synchronously, and so is every line
 * logged by a later `exit` listener. A line can be lost only if the process dies without
 * `exit` (SIGKILL, a fatal V8 error, an untrapped signal) within the turn it was logged in.
 */
export const makeBatchedSink = (write: (text: string) => void): LogSink & { readonly flush: () => void } => {
  let pending = ""
  let scheduled = false
  let exitHook = false
  // once the process is exiting no later turn comes: lines are written as they are logged
  let exiting = false
  const flush = () => {
    scheduled = false
    if (pending.length === 0) return
    const text = pending
    pending = ""
    write(text)
  }
  const onExit = () => {
    exiting = true
    flush()
  }
  const sink = (line: string) => {
    pending += line + "\n"
    if (exiting || pending.length >= BATCH_LIMIT) flush()
    else if (!scheduled) {
      scheduled = true
      setImmediate(flush)
      if (!exitHook) {
        exitHook = true
        process.once("exit", onExit)
      }
    }
  }
  return Object.assign(sink, { flush })
}

export const stdoutSink: LogSink = makeBatchedSink((text) => {
  process.stdout.write(text)
})

/** An Effect logger writing one JSON object per line. */
export const jsonLogger = (sink: LogSink): Logger.Logger<unknown, void> =>
  Logger.make(({ annotations, cause, date, logLevel, message }) => {
    const messages = Array.isArray(message) ? message : [message]
    const record: Record<string, unknown> = {
      ts: date.toISOString(),
      level: logLevel.label.toLowerCase()
    }
    const [first, ...rest] = messages
    record.msg = typeof first === "string" ? first : JSON.stringify(redact(first))
    for (const extra of rest) {
      if (extra !== null && typeof extra === "object" && !Array.isArray(extra)) {
        Object.assign(record, redact(extra) as object)
      } else if (extra !== undefined) {
        record.detail = redact(extra)
      }
    }
    for (const [k, v] of HashMap.toEntries(annotations)) {
      record[k] = SENSITIVE_KEY.test(k) ? "<redacted>" : redact(v)
    }
    if (!Cause.isEmpty(cause)) {
      const failures = List.fromIterable([...Cause.failures(cause), ...Cause.defects(cause)])
      record.error = List.toArray(failures).map((e) =>
        e !== null && typeof e === "object" && "_tag" in e
          ? {
              _tag: String((e as { _tag: unknown })._tag),
              message: String((e as { message?: unknown }).message ?? "")
            }
          : redact(e)
      )
    }
    sink(JSON.stringify(record))
  })

export const logLevelOf = (level: "debug" | "info" | "warning" | "error" | "none"): LogLevel.LogLevel =>
  level === "debug"
    ? LogLevel.Debug
    : level === "info"
      ? LogLevel.Info
      : level === "warning"
        ? LogLevel.Warning
        : level === "error"
          ? LogLevel.Error
          : LogLevel.None

/** Replace the default logger with the JSON logger at the given minimum level. */
export const loggerLayer = (
  level: "debug" | "info" | "warning" | "error" | "none",
  sink: LogSink = stdoutSink
) =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, jsonLogger(sink)),
    Logger.minimumLogLevel(logLevelOf(level))
  )

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/

export const requestIdFrom = (header: string | undefined): string =>
  header !== undefined && REQUEST_ID.test(header) ? header : randomUUID()

// Random trace ids come from a pool refilled 256 ids at a time (one `randomFillSync` per 256
// requests instead of one per request, as node's `randomUUID` does for request ids).
const TRACE_POOL = Buffer.alloc(16 * 256)
let tracePoolAt = TRACE_POOL.length

const randomTraceId = (): string => {
  if (tracePoolAt === TRACE_POOL.length) {
    randomFillSync(TRACE_POOL)
    tracePoolAt = 0
  }
  const id = TRACE_POOL.toString("hex", tracePoolAt, tracePoolAt + 16)
  tracePoolAt += 16
  // all zeros is an invalid W3C trace id
  return id === "00000000000000000000000000000000" ? randomTraceId() : id
}

export const traceIdFrom = (traceparent: string | undefined): string => {
  const m = traceparent === undefined ? null : TRACEPARENT.exec(traceparent)
  const id = m?.[1]
  return id !== undefined && id !== "00000000000000000000000000000000" ? id : randomTraceId()
}

export interface Instruments {
  readonly registry: Registry
  readonly httpRequests: Counter
  readonly httpDuration: Histogram
  readonly auditAppend: Histogram
  readonly deliveries: Counter
  readonly sessionTransitions: Counter
  readonly authFailures: Counter
}

/** The broker's metrics. */
export class BrokerMetrics extends Context.Tag("@aap/broker/BrokerMetrics")<BrokerMetrics, Instruments>() {}

export const makeInstruments = (): Instruments => {
  const registry = makeRegistry()
  return {
    registry,
    httpRequests: registry.counter("aap_http_requests_total", "HTTP requests by method, route and status."),
    httpDuration: registry.histogram(
      "aap_http_request_duration_seconds",
      "HTTP request latency by method, route and status.",
      latencyBuckets
    ),
    auditAppend: registry.histogram(
      "aap_audit_append_duration_seconds",
      "Latency of durable audit appends by outcome.",
      latencyBuckets
    ),
    deliveries: registry.counter("aap_deliveries_total", "Credential deliveries by backing and outcome."),
    sessionTransitions: registry.counter(
      "aap_session_transitions_total",
      "Session state changes made through this broker, by resulting state."
    ),
    authFailures: registry.counter("aap_auth_failures_total", "Failed bearer authentications.")
  }
}

export const layerMetrics: Layer.Layer<BrokerMetrics> = Layer.sync(BrokerMetrics, makeInstruments)
