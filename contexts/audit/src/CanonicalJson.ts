/**
 * Canonical JSON (ADR 0030): the byte string an audit hash and a checkpoint signature are
 * computed over.
 *
 * - Objects: members sorted by key, comparing UTF-16 code units (JavaScript's default sort);
 *   members whose value is `undefined` are omitted (an absent optional field and an
 *   `undefined` one hash the same).
 * - No whitespace anywhere.
 * - Strings: as `JSON.stringify` writes them (RFC 8259 escapes, `\u00XX` for control
 *   characters, lone surrogates escaped as `\uDXXX`).
 * - Numbers: finite only, as `JSON.stringify` writes them (ECMAScript shortest round-trip,
 *   `-0` as `0`); `NaN`, `Infinity` and `bigint` are rejected.
 * - `true`, `false`, `null`; arrays in order, an `undefined` element is rejected.
 * - Only plain objects and arrays: `Date`, `Map`, class instances, functions are rejected.
 * - The text is encoded as UTF-8 before hashing.
 *
 * This is RFC 8785 (JCS) except that lone surrogates are escaped rather than rejected.
 *
 * @since 0.1.0
 */
import { Data, Either } from "effect"

/**
 * The value cannot be written as canonical JSON.
 *
 * @since 0.1.0
 * @category errors
 */
export class CanonicalJsonError extends Data.TaggedError("CanonicalJsonError")<{
  readonly path: string
  readonly message: string
}> {}

const write = (value: unknown, path: string): string => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
      if (!Number.isFinite(value)) {
        throw new CanonicalJsonError({ path, message: `non-finite number at ${path}` })
      }
      return JSON.stringify(value)
    case "boolean":
      return value ? "true" : "false"
    case "object": {
      if (value === null) return "null"
      if (Array.isArray(value)) {
        let out = "["
        for (let i = 0; i < value.length; i++) {
          const element: unknown = value[i]
          if (element === undefined) {
            throw new CanonicalJsonError({ path, message: `undefined array element at ${path}[${i}]` })
          }
          out += (i === 0 ? "" : ",") + write(element, `${path}[${i}]`)
        }
        return out + "]"
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalJsonError({ path, message: `not a plain object at ${path}` })
      }
      const record = value as Record<string, unknown>
      const keys = Object.keys(record).sort()
      let out = "{"
      let first = true
      for (const key of keys) {
        const member = record[key]
        if (member === undefined) continue
        out += (first ? "" : ",") + JSON.stringify(key) + ":" + write(member, `${path}.${key}`)
        first = false
      }
      return out + "}"
    }
    default:
      throw new CanonicalJsonError({ path, message: `unsupported ${typeof value} at ${path}` })
  }
}

/**
 * Canonical JSON text of `value`, or the reason it has none.
 *
 * @since 0.1.0
 * @category encoding
 */
export const stringify = (value: unknown): Either.Either<string, CanonicalJsonError> => {
  try {
    return Either.right(write(value, "$"))
  } catch (error) {
    if (error instanceof CanonicalJsonError) return Either.left(error)
    throw error
  }
}

/**
 * Canonical JSON text of `value`; throws `CanonicalJsonError` when it has none. For callers
 * that validated their input already.
 *
 * @since 0.1.0
 * @category encoding
 */
export const stringifyUnsafe = (value: unknown): string => write(value, "$")

/**
 * Canonical JSON as UTF-8 bytes.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (value: unknown): Either.Either<Uint8Array, CanonicalJsonError> =>
  Either.map(stringify(value), (text) => new TextEncoder().encode(text))
