/**
 * `@aap/worker`: the background jobs (DESIGN §12) and the layer that runs them, for the CLI
 * (`aap worker`) and the embedded broker alike.
 *
 * @since 0.1.0
 */
export * as AuditShipping from "./AuditShipping.js"
export * as ChainVerification from "./ChainVerification.js"
export * as ExpirySweep from "./ExpirySweep.js"
export * as Progress from "./Progress.js"
export * as RevokedSessions from "./RevokedSessions.js"
export * as Rewrap from "./Rewrap.js"
export * as Standalone from "./Standalone.js"
export * as StsDenyList from "./StsDenyList.js"
export * as UpstreamRevocation from "./UpstreamRevocation.js"
export * as Worker from "./Worker.js"
/** The worker layer (see `Worker.makeWorker`). */
export { makeWorker } from "./Worker.js"
export * as WorkerConfig from "./WorkerConfig.js"
export * as WorkerHttp from "./WorkerHttp.js"
export * as WorkerMetrics from "./WorkerMetrics.js"
