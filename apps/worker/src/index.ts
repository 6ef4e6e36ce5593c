/**
 * `@aap/worker`: the background jobs (DESIGN §12) and the layer that runs them.
 *
 * @since 0.1.0
 */
export * as ExpirySweep from "./ExpirySweep.js"
export * as Progress from "./Progress.js"
export * as RevokedSessions from "./RevokedSessions.js"
export * as StsDenyList from "./StsDenyList.js"
export * as UpstreamRevocation from "./UpstreamRevocation.js"
export * as WorkerMetrics from "./WorkerMetrics.js"
