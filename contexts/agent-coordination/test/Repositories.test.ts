import { Layer } from "effect"
import * as Store from "../src/CoordinationStore.js"
import { dynamoStore, engine } from "./support/fixtures.js"
import { conformance } from "./support/repositoryConformance.js"

conformance("memory", Store.layerMemory)
conformance("dynalite", dynamoStore.pipe(Layer.provide(engine)))
