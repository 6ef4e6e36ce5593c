/**
 * The few things a DynamoDB call can mean to a caller, and the one place SDK errors are
 * translated into them. Contexts call {@link fromSdk} (or `DynamoDb.use`, which does it) at their
 * adapter edge and map these into their port's own errors; SDK error objects, messages and
 * request ids never travel further. Messages from the service are dropped on purpose: a
 * ValidationException can quote attribute values.
 *
 * @since 0.1.0
 */
import { Data, Effect } from "effect"

/** The store did not answer, answered with a server error, or the table is missing. */
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{
  readonly operation: string
  /** The error code (`ECONNREFUSED`, `InternalServerError`, `ResourceNotFoundException`, ...). */
  readonly reason: string
}> {
  override get message(): string {
    return `DynamoDB ${this.operation} failed: ${this.reason}`
  }
}

/** A conditional write's condition did not hold (the item exists, the version moved on). */
export class ConditionFailed extends Data.TaggedError("ConditionFailed")<{
  readonly operation: string
}> {
  override get message(): string {
    return `DynamoDB ${this.operation}: condition failed`
  }
}

/** Still throttled after the SDK's own retries. */
export class Throttled extends Data.TaggedError("Throttled")<{
  readonly operation: string
}> {
  override get message(): string {
    return `DynamoDB ${this.operation}: throttled`
  }
}

/**
 * The request itself was wrong (ValidationException, SerializationException): a bug in the
 * calling adapter, raised as a defect, with the error code only.
 */
export class StoreDefect extends Data.TaggedError("StoreDefect")<{
  readonly operation: string
  readonly reason: string
}> {
  override get message(): string {
    return `DynamoDB rejected ${this.operation}: ${this.reason}`
  }
}

export type StoreFailure = StoreUnavailable | ConditionFailed | Throttled

const throttling = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "LimitExceededException",
  "TooManyRequestsException"
])

const defects = new Set(["ValidationException", "SerializationException", "UnknownOperationException"])

const codeOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const record = error as { readonly name?: unknown; readonly code?: unknown }
    if (typeof record.code === "string" && record.code.length > 0) return record.code
    if (typeof record.name === "string" && record.name.length > 0 && record.name !== "Error")
      return record.name
  }
  return "UnknownError"
}

/**
 * Translate whatever a DynamoDB SDK call rejected with. Defects (our own malformed requests)
 * die with a {@link StoreDefect}; everything else becomes a {@link StoreFailure}.
 */
export const fromSdk =
  (operation: string) =>
  (error: unknown): Effect.Effect<never, StoreFailure> => {
    const code = codeOf(error)
    if (code === "ConditionalCheckFailedException") return Effect.fail(new ConditionFailed({ operation }))
    if (throttling.has(code)) return Effect.fail(new Throttled({ operation }))
    if (defects.has(code)) return Effect.die(new StoreDefect({ operation, reason: code }))
    return Effect.fail(new StoreUnavailable({ operation, reason: code }))
  }
