/**
 * The catalog's HTTP contract (DESIGN §10). Only `effect` and `@effect/platform`: the broker
 * composes this group into its `HttpApi` and adds authentication (it owns the principal); the
 * CLI and agents derive typed clients from it. Handlers live in the broker.
 */
import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Either, Schema } from "effect"
import * as Catalog from "./Catalog.js"

/** A capability as an agent sees it: no secret names, no role ARNs, no upstream details. */
export class CapabilitySummary extends Schema.Class<CapabilitySummary>("CapabilitySummary")({
  id: Schema.String,
  description: Schema.optional(Schema.String),
  tier: Catalog.Tier,
  backing: Schema.Literal("aws-sts", "bearer-token", "ssh-certificate", "wrapped-command"),
  defaultTtlSeconds: Schema.Int,
  maxTtlSeconds: Schema.Int,
  /** Distinct operator approvals the session waits for (0: granted at once). */
  approvals: Schema.Int,
  /** Critical: the request needs `breakGlass: true` and a justification. */
  breakGlass: Schema.Boolean,
  /** Environment variables `aap exec` injects (names only). */
  env: Schema.Array(Schema.String),
  /** Bearer token kept in the broker and used through `/v1/proxy/<capability>/...`. */
  proxied: Schema.Boolean,
  /**
   * Also usable as a standard forward proxy (`HTTPS_PROXY`, `proxy.connect` in the catalog);
   * `aap exec --proxy` then sets the proxy variables. Optional: brokers before it omit it.
   */
  forward: Schema.optional(Schema.Boolean)
}) {}

/** `GET /v1/catalog`: the capabilities this agent may request. */
export class CatalogView extends Schema.Class<CatalogView>("CatalogView")({
  agent: Schema.String,
  wallet: Schema.String,
  capabilities: Schema.Array(CapabilitySummary)
}) {}

/** `POST /v1/catalog/reload`: what is now in force. */
export class CatalogReloaded extends Schema.Class<CatalogReloaded>("CatalogReloaded")({
  file: Schema.String,
  agents: Schema.Int,
  operators: Schema.Int,
  capabilities: Schema.Int
}) {}

const envOf = (backing: Catalog.Backing): ReadonlyArray<string> => {
  switch (backing.type) {
    case "bearer-token":
      return backing.proxy === undefined ? [backing.env] : []
    case "wrapped-command":
      return Object.keys(backing.env)
    case "aws-sts":
      return ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"]
    case "ssh-certificate":
      return ["SSH_AUTH_SOCK"]
  }
}

/** The agent's view of the catalog; `UnknownAgent` when the agent is not (or no longer) in it. */
export const view = (
  catalog: Catalog.Catalog,
  agentId: string
): Either.Either<CatalogView, Catalog.UnknownAgent> => {
  const agent = Catalog.findAgent(catalog, agentId)
  if (agent === undefined) return Either.left(new Catalog.UnknownAgent({ agent: agentId }))
  return Either.right(
    new CatalogView({
      agent: agent.id,
      wallet: agent.wallet,
      capabilities: Catalog.capabilitiesFor(catalog, agent.id).map(
        (c) =>
          new CapabilitySummary({
            id: c.id,
            ...(c.description === undefined ? {} : { description: c.description }),
            tier: c.tier,
            backing: c.backing.type,
            defaultTtlSeconds: c.ttl.default,
            maxTtlSeconds: c.ttl.max,
            approvals: Catalog.requiredApprovals(c),
            breakGlass: c.tier === "critical",
            env: envOf(c.backing),
            proxied: c.backing.type === "bearer-token" && c.backing.proxy !== undefined,
            forward: c.backing.type === "bearer-token" && c.backing.proxy?.connect !== undefined
          })
      )
    })
  )
}

/** The `catalog` group. The broker adds its auth middleware when composing. */
export class CatalogApi extends HttpApiGroup.make("catalog")
  .add(HttpApiEndpoint.get("list", "/v1/catalog").addSuccess(CatalogView).addError(Catalog.UnknownAgent))
  .add(
    HttpApiEndpoint.post("reload", "/v1/catalog/reload")
      .addSuccess(CatalogReloaded)
      .addError(Catalog.CatalogInvalid)
      .addError(Catalog.CatalogUnreadable)
  ) {}
