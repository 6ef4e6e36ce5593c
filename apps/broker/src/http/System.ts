/**
 * Handlers of the broker's own endpoints.
 */
import { HttpApiBuilder, type HttpApiGroup, HttpServerResponse } from "@effect/platform"
import { Effect, type Layer } from "effect"
import { Api } from "../Api.js"
import { NotReady } from "../BrokerErrors.js"
import { BrokerMetrics } from "../internal/observability.js"
import { Readiness } from "../Readiness.js"

const started = Date.now()

export const SystemLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"aap", "system">,
  never,
  Readiness | BrokerMetrics
> = HttpApiBuilder.group(Api, "system", (handlers) =>
  Effect.gen(function* () {
    const readiness = yield* Readiness
    const metrics = yield* BrokerMetrics
    return handlers
      .handle("healthz", () =>
        Effect.succeed({
          status: "ok" as const,
          version: "0.1.0",
          uptimeSeconds: Math.round((Date.now() - started) / 1000)
        })
      )
      .handle("readyz", () =>
        Effect.gen(function* () {
          const results = yield* Effect.forEach(
            readiness.checks,
            (probe) =>
              probe.check.pipe(
                Effect.timeout("2 seconds"),
                Effect.as("ok" as const),
                Effect.catchAllCause(() => Effect.succeed("failing" as const)),
                Effect.map((state) => [probe.name, state] as const)
              ),
            { concurrency: "unbounded" }
          )
          const checks = Object.fromEntries(results)
          const failing = results.filter(([, s]) => s === "failing").map(([n]) => n)
          return failing.length === 0
            ? { status: "ready" as const, checks }
            : yield* new NotReady({ message: `not ready: ${failing.join(", ")} unreachable`, checks })
        })
      )
      .handle("metrics", () =>
        Effect.promise(() => metrics.registry.render()).pipe(
          Effect.map((body) =>
            HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
          )
        )
      )
  })
)
