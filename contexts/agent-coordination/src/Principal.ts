/**
 * Who is calling. The broker's authentication middleware turns a bearer token into a
 * `Principal` (via `Identities.authenticate`) and hands it to every coordination call.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** An agent: a non-human principal bound to its wallet. */
export const Agent = Schema.TaggedStruct("agent", {
  id: Schema.String,
  wallet: Schema.String
})
export type Agent = typeof Agent.Type

/** An operator: a human principal; approves, denies, mints link codes. */
export const Operator = Schema.TaggedStruct("operator", {
  id: Schema.String
})
export type Operator = typeof Operator.Type

/** `{ _tag: "agent", id, wallet } | { _tag: "operator", id }` */
export const Principal = Schema.Union(Agent, Operator)
export type Principal = typeof Principal.Type

/** The two kinds of principal, as stored next to a token. */
export const PrincipalType = Schema.Literal("agent", "operator")
export type PrincipalType = typeof PrincipalType.Type

export const agent = (id: string, wallet: string): Agent => Agent.make({ id, wallet })
export const operator = (id: string): Operator => Operator.make({ id })

export const isOperator = (p: Principal): p is Operator => p._tag === "operator"
export const isAgent = (p: Principal): p is Agent => p._tag === "agent"
