// Bundle the CLI into dist/aap.mjs (ADR 0002): one ESM file for Node 20, CJS dependencies
// supported through a `require` created in the banner.

import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const here = fileURLToPath(new URL(".", import.meta.url))
const started = performance.now()
const result = await build({
  absWorkingDir: here,
  entryPoints: ["src/bin.ts"],
  outfile: "dist/aap.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  minifySyntax: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  banner: {
    js: 'import { createRequire as __aapCreateRequire } from "node:module"; const require = __aapCreateRequire(import.meta.url);'
  }
})
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined)?.bytes ?? 0
console.log(`dist/aap.mjs ${(bytes / 1024).toFixed(0)} KiB in ${Math.round(performance.now() - started)} ms`)
