/**
 * Writes docs/api/openapi.json from the broker's HttpApi (`pnpm --filter @aap/broker openapi`).
 * A test fails when the committed file is stale.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { OpenApi } from "@effect/platform"
import { Api } from "../src/Api.js"

const file = Path.resolve(import.meta.dirname, "../../../docs/api/openapi.json")
Fs.mkdirSync(Path.dirname(file), { recursive: true })
Fs.writeFileSync(file, `${JSON.stringify(OpenApi.fromApi(Api), null, 2)}\n`)
console.log(`wrote ${file}`)
