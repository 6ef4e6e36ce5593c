/**
 * @since 0.1.0
 */
export * as DynamoDb from "./DynamoDb.js"
export * as Engine from "./Engine.js"
export * as StoreError from "./StoreError.js"
