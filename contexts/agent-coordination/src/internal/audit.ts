import { type AuditEvent, AuditLog } from "@aap/audit"
import { Effect } from "effect"
import { Unavailable } from "../Errors.js"
import type { Principal } from "../Principal.js"

export const actorOf = (p: Principal): AuditEvent.Actor => ({ type: p._tag, id: p.id })
export const system: AuditEvent.Actor = { type: "system", id: "coordination" }
export const anonymous: AuditEvent.Actor = { type: "anonymous", id: "anonymous" }

/** Appends durably; an unavailable audit log fails the caller with 503 (fail closed). */
export const append = (input: AuditEvent.AuditInput): Effect.Effect<void, Unavailable, AuditLog.AuditLog> =>
  Effect.flatMap(AuditLog.AuditLog, (log) => log.append(input)).pipe(
    Effect.asVoid,
    Effect.mapError(() => new Unavailable({ message: "the audit log is unavailable", dependency: "audit" }))
  )
