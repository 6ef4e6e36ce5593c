import { Layer } from "effect"
import * as Store from "../src/CoordinationStore.js"
import { dynamoStore, engine } from "./support/fixtures.js"
import { suite } from "./support/identitiesSuite.js"

suite("memory", Layer.empty, Store.layerMemory)
suite("dynalite", engine, dynamoStore)
