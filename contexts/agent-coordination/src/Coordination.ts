/**
 * The whole identities-and-sessions stack over one store, for apps (broker, worker, CLI
 * tools) that do not need to pick the pieces one by one.
 *
 * Needs from other contexts: `SystemKeys` (key-custody, for item MACs), `AuditLog` (audit),
 * `CurrentCatalog` (the catalog in force), and for the DynamoDB variant `DynamoDb`
 * (local-stack).
 *
 * @since 0.1.0
 */
import type { AuditLog } from "@aap/audit"
import type { SystemKeys } from "@aap/key-custody"
import type { DynamoDb } from "@aap/local-stack"
import { Layer } from "effect"
import * as CoordinationStore from "./CoordinationStore.js"
import type { CurrentCatalog } from "./CurrentCatalog.js"
import type { Unavailable } from "./Errors.js"
import * as Identities from "./Identities.js"
import * as IdentityRepository from "./IdentityRepository.js"
import * as SessionRepository from "./SessionRepository.js"
import * as Sessions from "./Sessions.js"

export type Services =
  | Sessions.Sessions
  | Identities.Identities
  | SessionRepository.SessionRepository
  | IdentityRepository.IdentityRepository
  | CoordinationStore.CoordinationStore

type Needs = SystemKeys.SystemKeys | AuditLog.AuditLog | CurrentCatalog

/** The services over a given store layer. */
export const layerWith = <E, R>(
  store: Layer.Layer<CoordinationStore.CoordinationStore, E, R>,
  limits: Partial<Sessions.Limits> = {}
): Layer.Layer<Services, E, R | Needs> =>
  Layer.mergeAll(Sessions.layer(limits), Identities.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(SessionRepository.layer, IdentityRepository.layer)),
    Layer.provideMerge(store)
  )

/** On DynamoDB (the embedded engine or AWS); creates the table if it is missing. */
export const layerDynamoDb = (
  limits: Partial<Sessions.Limits> = {}
): Layer.Layer<Services, Unavailable, DynamoDb.DynamoDb | Needs> =>
  layerWith(CoordinationStore.layerDynamoDb, limits)

/** In memory (tests, demos). */
export const layerMemory = (limits: Partial<Sessions.Limits> = {}): Layer.Layer<Services, never, Needs> =>
  layerWith(CoordinationStore.layerMemory, limits)
