/**
 * Loading a catalog file: YAML with source positions, the shape check of the `Catalog` schema
 * and the semantic rules of DESIGN §5, all in one pass. Every issue names the file, line,
 * column and path (`capabilities[2].ttl.max`) and says what was expected.
 */
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Either, ParseResult, Schema } from "effect"
import { LineCounter, parseDocument } from "yaml"
import * as Catalog from "./Catalog.js"
import { CatalogInvalid, CatalogIssue, CatalogUnreadable } from "./Catalog.js"
import { formatPath, locate, type Path, pathAt } from "./internal/positions.js"
import * as Rules from "./internal/rules.js"

const rewriteMessage = (issue: ParseResult.ArrayFormatterIssue): string => {
  const key = String(issue.path[issue.path.length - 1] ?? "")
  switch (issue._tag) {
    case "Missing":
      return `missing required key ${JSON.stringify(key)}`
    case "Unexpected": {
      const expected = /expected: (.*)$/.exec(issue.message)?.[1]
      return `unknown key ${JSON.stringify(key)}${expected === undefined ? "" : `; expected one of ${expected.replaceAll(" | ", ", ")}`}`
    }
    default:
      return issue.message
  }
}

const EXPECTED_ACTUAL = /^Expected (.*), actual (.*)$/s

const isPrefix = (prefix: Path, path: Path): boolean =>
  prefix.length <= path.length && prefix.every((segment, i) => segment === path[i])

/**
 * Effect's issues, made readable: an optional field's "Expected undefined" next to a real
 * problem inside it is dropped, and a union of literals (`tier: urgent`) becomes one issue
 * listing every accepted value.
 */
const shapeIssues = (
  issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>
): ReadonlyArray<{ readonly path: Path; readonly message: string; readonly atKey: boolean }> => {
  const out: Array<{
    path: Path
    message: string
    atKey: boolean
    expected?: Array<string>
    actual?: string
  }> = []
  for (const issue of issues) {
    if (
      issue.message.startsWith("Expected undefined,") &&
      issues.some((other) => other !== issue && isPrefix(issue.path, other.path))
    ) {
      continue
    }
    const match = issue._tag === "Type" ? EXPECTED_ACTUAL.exec(issue.message) : null
    if (match !== null) {
      const [, expected = "", actual = ""] = match
      const same = out.find((o) => o.actual === actual && formatPath(o.path) === formatPath(issue.path))
      if (same?.expected !== undefined) {
        same.expected.push(expected)
        same.message = `expected ${same.expected.length > 1 ? "one of " : ""}${same.expected.join(", ")}, got ${actual}`
        continue
      }
      out.push({
        path: issue.path,
        message: `expected ${expected}, got ${actual}`,
        atKey: false,
        expected: [expected],
        actual
      })
      continue
    }
    out.push({ path: issue.path, message: rewriteMessage(issue), atKey: issue._tag === "Unexpected" })
  }
  return out
}

interface Located {
  readonly path: Path
  readonly message: string
  readonly line: number
  readonly column: number
}

const decodeCatalog = Schema.decodeUnknownEither(Catalog.Catalog, {
  errors: "all",
  onExcessProperty: "error"
})

/**
 * Parse and validate catalog text. Pure: `file` is only used in the issues.
 * YAML syntax errors stop the pass (the structure cannot be trusted); otherwise shape and
 * semantic issues are reported together.
 */
export const parse = (
  text: string,
  file = "catalog.yaml"
): Either.Either<Catalog.Catalog, CatalogInvalid> => {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true })
  const fail = (located: ReadonlyArray<Located>) =>
    Either.left(
      new CatalogInvalid({
        file,
        issues: [...located]
          .sort((a, b) => a.line - b.line || a.column - b.column)
          .map(
            (l) =>
              new CatalogIssue({
                file,
                line: l.line,
                column: l.column,
                path: formatPath(l.path),
                message: l.message
              })
          )
      })
    )
  if (doc.errors.length > 0) {
    return fail(
      doc.errors.map((error) => {
        const pos = lineCounter.linePos(error.pos[0])
        const message = error.message.split("\n")[0] ?? error.message
        if (error.code === "DUPLICATE_KEY") {
          const path = pathAt(doc, error.pos[0])
          const key = path[path.length - 1]
          return { path, message: `duplicate key ${JSON.stringify(key)}`, line: pos.line, column: pos.col }
        }
        return { path: [], message: `YAML: ${message}`, line: pos.line, column: pos.col }
      })
    )
  }
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: 100 })
  } catch (cause) {
    return fail([{ path: [], message: `YAML: ${String(cause)}`, line: 1, column: 1 }])
  }
  const located: Array<Located> = []
  const add = (path: Path, message: string, atKey = false) => {
    const pos = locate(doc, lineCounter, path, atKey)
    located.push({ path, message, line: pos.line, column: pos.column })
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return fail([
      {
        path: [],
        message: `expected a mapping with the keys schemaVersion, agents, operators and capabilities, got ${raw === null ? "an empty document" : JSON.stringify(raw)}`,
        ...locate(doc, lineCounter, [])
      }
    ])
  }
  const decoded = decodeCatalog(raw)
  if (Either.isLeft(decoded)) {
    for (const issue of shapeIssues(ParseResult.ArrayFormatter.formatErrorSync(decoded.left))) {
      add(issue.path, issue.message, issue.atKey)
    }
  }
  for (const issue of Rules.check(raw)) add(issue.path, issue.message)
  if (located.length > 0 || Either.isLeft(decoded)) return fail(located)
  return Either.right(decoded.right)
}

const unreadableReason = (error: PlatformError): string => {
  if (error._tag !== "SystemError") return error.message
  switch (error.reason) {
    case "NotFound":
      return "no such file"
    case "PermissionDenied":
      return "permission denied"
    case "BadResource":
      return "not a readable file (a directory?)"
    default:
      return error.reason
  }
}

/** Read and validate a catalog file. */
export const load = (
  path: string
): Effect.Effect<Catalog.Catalog, CatalogInvalid | CatalogUnreadable, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(path, "utf8")
      .pipe(
        Effect.mapError((error) => new CatalogUnreadable({ file: path, reason: unreadableReason(error) }))
      )
    return yield* Either.match(parse(text, path), { onLeft: Effect.fail, onRight: Effect.succeed })
  })
