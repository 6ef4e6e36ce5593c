// Bundle the CLI (ADR 0002, ADR 0061): ESM for Node 20 with code splitting. `dist/aap.mjs` is
// the small entry (command tree, argument parsing, help); everything a command needs beyond
// that (typed client and contexts, broker, keyring, AWS SDK) is a chunk under dist/chunks/
// loaded by a dynamic `import()` when that command runs. dynalite and s3rver stay external
// (CommonJS with native addons); they are dependencies of this package and resolve at run time.

import { rmSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const here = fileURLToPath(new URL(".", import.meta.url))

// Parsers the CLI never calls but its libraries import at the top: @effect/cli's config-file
// support (`Options.fileParse`: ini, toml, yaml) and effect's `Arbitrary` (fast-check, for
// property tests). Replaced by a stub that throws if ever called, which keeps ~400 KiB of
// JavaScript off every start-up (ADR 0061). The catalog's own `yaml` import is untouched.
const unused = {
  name: "aap-unused-parsers",
  setup(b) {
    const stub = { path: "aap-unused", namespace: "aap-unused" }
    b.onResolve({ filter: /^(ini|toml|yaml)$/ }, (args) =>
      /[\\/]@effect[\\/]cli[\\/]/.test(args.importer) ? stub : undefined
    )
    b.onResolve({ filter: /^fast-check$/ }, (args) =>
      /[\\/]effect[\\/]dist[\\/]/.test(args.importer) ? stub : undefined
    )
    b.onLoad({ filter: /.*/, namespace: "aap-unused" }, () => ({
      contents:
        'const no = () => { throw new Error("aap: this parser is not part of the aap binary") }\n' +
        "export const parse = no, stringify = no, decode = no, encode = no\n",
      loader: "js"
    }))
  }
}
const started = performance.now()
rmSync(new URL("dist", import.meta.url), { recursive: true, force: true })
// The workspace packages export TypeScript sources without a `sideEffects` field, so esbuild
// would keep every module a barrel (`@aap/broker`'s index) re-exports. Their modules only
// define values; marking them side-effect free lets `aap session list` load the HTTP contract
// without the broker's server, the embedded engine and the AWS SDK (ADR 0061).
const workspaceSources = {
  name: "aap-workspace-side-effect-free",
  setup(b) {
    const workspace =
      /[\\/](contexts|apps[\\/](broker|worker)|tooling[\\/]local-stack)[\\/][^\\/]+[\\/]src[\\/]|[\\/](contexts[\\/][^\\/]+|apps[\\/](broker|worker)|tooling[\\/]local-stack)[\\/]src[\\/]/
    b.onResolve({ filter: /^(@aap\/|\.{1,2}\/)/ }, async (args) => {
      if (args.pluginData === "aap-resolved") return undefined
      if (!args.path.startsWith("@aap/") && !workspace.test(args.importer)) return undefined
      const r = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: "aap-resolved"
      })
      return r.errors.length > 0 || !workspace.test(r.path) ? undefined : { ...r, sideEffects: false }
    })
  }
}

const result = await build({
  absWorkingDir: here,
  entryPoints: { aap: "src/bin.ts" },
  outdir: "dist",
  entryNames: "[name]",
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  minify: true,
  keepNames: false,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  external: ["dynalite", "s3rver"],
  plugins: [unused, workspaceSources],
  banner: {
    js: 'import { createRequire as __aapCreateRequire } from "node:module"; const require = __aapCreateRequire(import.meta.url);'
  }
})

// `aap serve` / `aap worker`: the broker and the worker as their own bundle, handed over to by bin.ts (not a chunk: esbuild's
// splitting would otherwise share the broker's modules with the client commands' chunks).
const served = await build({
  absWorkingDir: here,
  entryPoints: { daemon: "src/daemon.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  minify: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  external: ["dynalite", "s3rver"],
  plugins: [unused, workspaceSources],
  banner: {
    js: 'import { createRequire as __aapCreateRequire } from "node:module"; const require = __aapCreateRequire(import.meta.url);'
  }
})
Object.assign(result.metafile.outputs, served.metafile.outputs)
writeFileSync(new URL("dist/meta.json", import.meta.url), JSON.stringify(result.metafile))

// What `aap --version` loads: the entry and its static imports, transitively.
const outputs = result.metafile.outputs
const eager = new Set()
const visit = (file) => {
  if (eager.has(file)) return
  eager.add(file)
  for (const i of outputs[file]?.imports ?? [])
    if (i.kind === "import-statement" && outputs[i.path]) visit(i.path)
}
visit("dist/aap.mjs")
const kib = (files) => (files.reduce((n, f) => n + outputs[f].bytes, 0) / 1024).toFixed(0)
const all = Object.keys(outputs).filter((f) => f.endsWith(".mjs"))
console.log(
  `dist/aap.mjs: ${kib([...eager])} KiB loaded eagerly (${eager.size} files), ${kib(all)} KiB in ${all.length} files, in ${Math.round(performance.now() - started)} ms`
)
