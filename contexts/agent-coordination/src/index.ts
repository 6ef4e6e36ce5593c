/**
 * `@aap/agent-coordination`: identities, sessions, approvals (and delivery, DESIGN §9).
 *
 * @since 0.1.0
 */
export * as Api from "./Api.js"
export * as Coordination from "./Coordination.js"
export * as CoordinationStore from "./CoordinationStore.js"
export * as CurrentCatalog from "./CurrentCatalog.js"
export * as Delivery from "./Delivery.js"
export * as DeliveryApi from "./delivery/Api.js"
export * as AwsCredentials from "./delivery/AwsCredentials.js"
export * as OidcIssuer from "./delivery/OidcIssuer.js"
export * as DeliveryPorts from "./delivery/Ports.js"
export * as ProvisionedKeys from "./delivery/ProvisionedKeys.js"
export * as Provisioner from "./delivery/Provisioner.js"
export * as SshCertificate from "./delivery/SshCertificate.js"
export * as Errors from "./Errors.js"
export * as Identities from "./Identities.js"
export * as IdentityRepository from "./IdentityRepository.js"
export * as LinkCode from "./LinkCode.js"
export * as Principal from "./Principal.js"
export * as EgressProxy from "./proxy/EgressProxy.js"
export * as ForwardProxy from "./proxy/ForwardProxy.js"
export * as Session from "./Session.js"
export * as SessionRepository from "./SessionRepository.js"
export * as Sessions from "./Sessions.js"
export * as Token from "./Token.js"
