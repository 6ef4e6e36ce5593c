#!/usr/bin/env node
// The `aap` binary: runs the bundle built by `pnpm build` (apps/cli/build.mjs).
import { existsSync } from "node:fs"

const bundle = new URL("../dist/aap.mjs", import.meta.url)
if (!existsSync(bundle)) {
  console.error(
    "aap: the CLI is not built yet; run `pnpm build` (in apps/cli or at the repository root) first"
  )
  process.exit(1)
}
await import(bundle.href)
