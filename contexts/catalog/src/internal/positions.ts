import { type Document, isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml"

export type Path = ReadonlyArray<PropertyKey>

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/

/** `["capabilities", 2, "ttl", "max"]` → `capabilities[2].ttl.max`. */
export const formatPath = (path: Path): string => {
  let out = ""
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`
    else {
      const key = String(segment)
      out += IDENTIFIER.test(key) ? (out === "" ? key : `.${key}`) : `[${JSON.stringify(key)}]`
    }
  }
  return out
}

const keyOf = (key: unknown): string | undefined => {
  if (isScalar(key)) return String(key.value)
  return key === null || key === undefined ? undefined : String(key)
}

const rangeStart = (node: unknown): number | undefined => {
  if (node !== null && typeof node === "object" && "range" in node) {
    const range = (node as Node).range
    if (Array.isArray(range)) return range[0]
  }
  return undefined
}

/**
 * Where a path points in the document: the value node when it exists; the key when `atKey`
 * (unknown keys) or when the value is empty; otherwise the deepest existing ancestor (a
 * missing key is reported at the mapping that should hold it).
 */
export const locate = (
  doc: Document,
  lineCounter: LineCounter,
  path: Path,
  atKey = false
): { readonly line: number; readonly column: number } => {
  let node: unknown = doc.contents
  let offset = rangeStart(node) ?? 0
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]
    const last = i === path.length - 1
    if (isMap(node)) {
      const pair = node.items.find((p) => keyOf(p.key) === String(segment))
      if (pair === undefined) break
      const keyStart = rangeStart(pair.key)
      const valueStart = rangeStart(pair.value)
      node = pair.value
      offset = (last && atKey) || valueStart === undefined ? (keyStart ?? offset) : valueStart
      if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) {
        offset = keyStart ?? offset
      }
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment]
      if (item === undefined) break
      node = item
      offset = rangeStart(item) ?? offset
    } else break
  }
  const pos = lineCounter.linePos(offset)
  return { line: pos.line, column: pos.col }
}

const contains = (node: unknown, offset: number): boolean => {
  if (node === null || typeof node !== "object" || !("range" in node)) return false
  const range = (node as Node).range
  return Array.isArray(range) && range[0] <= offset && offset < Math.max(range[2], range[1])
}

/** The path of the deepest key or item at `offset` (used to name YAML errors such as duplicate keys). */
export const pathAt = (doc: Document, offset: number): Path => {
  const path: Array<PropertyKey> = []
  let node: unknown = doc.contents
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((p) => contains(p.key, offset) || contains(p.value, offset))
      const key = pair === undefined ? undefined : keyOf(pair.key)
      if (pair === undefined || key === undefined) return path
      path.push(key)
      if (contains(pair.key, offset)) return path
      node = pair.value
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => contains(item, offset))
      if (index === -1) return path
      path.push(index)
      node = node.items[index]
    } else return path
  }
}
