/**
 * `${name}` templates in aws-sts resources and session tags. A `$` is only allowed as the start
 * of `${name}`; anything else (an unterminated `${`, an empty name, IAM's own `${aws:...}`
 * variables) is an error, so a template means exactly what the catalog's variables say.
 */
export type Part = { readonly literal: string } | { readonly variable: string }

export type Parsed =
  | { readonly _tag: "Ok"; readonly parts: ReadonlyArray<Part> }
  | { readonly _tag: "Error"; readonly reason: string }

const NAME = /^[a-z_][a-z0-9_]*$/

export const parse = (template: string): Parsed => {
  const parts: Array<Part> = []
  let i = 0
  let literal = ""
  while (i < template.length) {
    const ch = template[i]!
    if (ch !== "$") {
      literal += ch
      i++
      continue
    }
    if (template[i + 1] !== "{") {
      return { _tag: "Error", reason: `"$" at offset ${i} does not start a \${variable}` }
    }
    const end = template.indexOf("}", i + 2)
    if (end === -1) return { _tag: "Error", reason: `unterminated "\${" at offset ${i}` }
    const name = template.slice(i + 2, end)
    if (name.includes("$") || name.includes("{"))
      return { _tag: "Error", reason: `unterminated "\${" at offset ${i}` }
    if (!NAME.test(name)) return { _tag: "Error", reason: `"\${${name}}" is not a catalog variable` }
    if (literal !== "") parts.push({ literal })
    literal = ""
    parts.push({ variable: name })
    i = end + 1
  }
  if (literal !== "") parts.push({ literal })
  return { _tag: "Ok", parts }
}

/** Variable names used by a template (empty when it does not parse). */
export const variables = (template: string): ReadonlyArray<string> => {
  const parsed = parse(template)
  return parsed._tag === "Ok" ? parsed.parts.flatMap((p) => ("variable" in p ? [p.variable] : [])) : []
}
