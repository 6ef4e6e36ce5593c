import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { KeyProvider } from "@aap/key-custody"
import { DynamoDb } from "@aap/local-stack"
import { Effect, Layer } from "effect"
import { SecretStore } from "../src/index.js"
import { conformance } from "./conformance.js"

conformance("memory", SecretStore.layerMemory.pipe(Layer.provide(KeyProvider.layerMemory)))

conformance(
  "dynalite in memory",
  SecretStore.layerDynamoDb.pipe(
    Layer.provide(Layer.merge(DynamoDb.layerEmbedded(), KeyProvider.layerMemory))
  )
)

conformance(
  "dynalite on disk",
  Layer.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "aap-vault-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      ),
      (dir) =>
        SecretStore.layerDynamoDb.pipe(
          Layer.provide(Layer.merge(DynamoDb.layerEmbedded({ dir }), KeyProvider.layerMemory))
        )
    )
  )
)
