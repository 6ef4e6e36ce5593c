/**
 * @aap/audit — hash-chained, fail-closed audit log (DESIGN §8).
 *
 * @since 0.1.0
 */

export * as Api from "./Api.js"
export * as AuditError from "./AuditError.js"
export * as AuditEvent from "./AuditEvent.js"
export * as AuditHmac from "./AuditHmac.js"
export * as AuditKeys from "./AuditKeys.js"
export * as AuditLog from "./AuditLog.js"
export * as AuditReader from "./AuditReader.js"
export * as AuditSink from "./AuditSink.js"
export * as CanonicalJson from "./CanonicalJson.js"
export * as DynamoDbSink from "./DynamoDbSink.js"
export * as JsonlSink from "./JsonlSink.js"
