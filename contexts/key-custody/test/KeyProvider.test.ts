import * as path from "node:path"
import { Effect, Layer } from "effect"
import { KeyProvider } from "../src/index.js"
import { conformance } from "./conformance.js"
import { tempDir } from "./helpers.js"

conformance("memory", KeyProvider.layerMemory)

conformance(
  "local keyring file",
  Layer.unwrapScoped(
    Effect.map(tempDir, (dir) =>
      KeyProvider.layerLocalKeyring({ path: path.join(dir, "keys", "keyring.json") })
    )
  )
)
