import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import {
  KeyringCore as Core,
  type KeyringCore,
  type KeyringDoc,
  memoryStorage
} from "../src/internal/keyring.js"
import { makeSystemKeys } from "../src/internal/systemKeys.js"
import { KeyProvider } from "../src/KeyProvider.js"
import { KeyringAdmin } from "../src/KeyringAdmin.js"
import { SystemKeys } from "../src/SystemKeys.js"

/** A temporary directory, removed when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(path.join(tmpdir(), "aap-key-custody-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

/** All three services over a keyring core. */
export const layerFromCore = (core: KeyringCore): Layer.Layer<KeyProvider | SystemKeys | KeyringAdmin> =>
  Layer.succeedContext(
    Context.make(KeyProvider, {
      generateDataKey: (c) => core.generateDataKey(c),
      decryptDataKey: (c, w, k) => core.decryptDataKey(c, w, k),
      rewrap: (c, w, k) => core.rewrap(c, w, k),
      rotate: () => core.rotate(),
      describe: () => Effect.sync(() => core.describeSync())
    }).pipe(
      Context.add(SystemKeys, makeSystemKeys(core.rootSecret())),
      Context.add(KeyringAdmin, {
        shredWallet: (w) => core.shredWallet(w)
      })
    )
  )

/** A memory keyring loaded from a given document (e.g. the Python-made vector keyring). */
export const layerFromDoc = (doc: KeyringDoc): Layer.Layer<KeyProvider | SystemKeys | KeyringAdmin> =>
  Layer.unwrapEffect(
    Effect.map(Effect.orDie(Core.load(doc, memoryStorage, "memory", "memory")), layerFromCore)
  )

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"))
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex")
