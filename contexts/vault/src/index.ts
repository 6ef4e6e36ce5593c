/**
 * `@aap/vault`: the envelope-encrypted secret store per wallet (DESIGN §7).
 *
 * @since 0.1.0
 */
export * as Api from "./Api.js"
export * as Secret from "./Secret.js"
export * as SecretStore from "./SecretStore.js"
export * as VaultError from "./VaultError.js"
