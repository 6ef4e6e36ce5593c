/**
 * `@aap/key-custody`: the key hierarchy every secret rests on (DESIGN §6).
 *
 * @since 0.1.0
 */
export * as DekCache from "./DekCache.js"
export * as Envelope from "./Envelope.js"
export * as KeyCustodyError from "./KeyCustodyError.js"
export * as KeyProvider from "./KeyProvider.js"
export * as KeyringAdmin from "./KeyringAdmin.js"
export * as SystemKeys from "./SystemKeys.js"
