/**
 * `@aap/agent-coordination`: identities, sessions, approvals (and delivery, DESIGN §9).
 *
 * @since 0.1.0
 */
export * as Api from "./Api.js"
export * as CoordinationStore from "./CoordinationStore.js"
export * as CurrentCatalog from "./CurrentCatalog.js"
export * as Errors from "./Errors.js"
export * as Identities from "./Identities.js"
export * as IdentityRepository from "./IdentityRepository.js"
export * as LinkCode from "./LinkCode.js"
export * as Principal from "./Principal.js"
export * as Session from "./Session.js"
export * as SessionRepository from "./SessionRepository.js"
export * as Sessions from "./Sessions.js"
export * as Token from "./Token.js"
