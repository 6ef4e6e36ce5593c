import { Effect, Either, Schema } from "effect"
import { InvalidCursor } from "../Errors.js"

/** What a cursor carries: the query it belongs to and the last key returned. */
const Cursor = Schema.Struct({
  i: Schema.String,
  p: Schema.String,
  k: Schema.Record({ key: Schema.String, value: Schema.String })
})
type Cursor = typeof Cursor.Type

const CursorJson = Schema.parseJson(Cursor)

export const encode = (cursor: Cursor): string =>
  Buffer.from(Schema.encodeSync(CursorJson)(cursor), "utf8").toString("base64url")

/** Decodes a cursor and checks it belongs to this query (index and partition). */
export const decode = (
  raw: string,
  index: string,
  pk: string
): Effect.Effect<Record<string, string>, InvalidCursor> => {
  const bad = new InvalidCursor({ message: "the cursor is malformed or belongs to another query" })
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(raw)) return Effect.fail(bad)
  const decoded = Schema.decodeUnknownEither(CursorJson)(Buffer.from(raw, "base64url").toString("utf8"))
  return Either.isRight(decoded) && decoded.right.i === index && decoded.right.p === pk
    ? Effect.succeed(decoded.right.k)
    : Effect.fail(bad)
}
