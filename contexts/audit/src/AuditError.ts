/**
 * Errors of the audit context that cross the wire.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * The audit log could not durably record the event (sink failure, keys unavailable, backlog
 * full, or the append exceeded its timeout). The request that needed the record must fail:
 * 503 on the wire (DESIGN §2.3, §8). The message never carries event content.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuditUnavailable extends Schema.TaggedError<AuditUnavailable>()(
  "AuditUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}
