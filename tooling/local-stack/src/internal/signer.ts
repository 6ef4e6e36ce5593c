import type { DynamoDBClientConfig } from "@aws-sdk/client-dynamodb"

type HttpAuthScheme = NonNullable<DynamoDBClientConfig["httpAuthSchemes"]>[number]

const zeros = "0".repeat(64)

/** `20261122T040000Z` */
const amzDate = (now: Date): string =>
  now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "")

/**
 * Replaces the SigV4 signer for an engine we started ourselves on loopback: dynalite checks
 * that an `AWS4-` Authorization header with Credential, SignedHeaders and Signature and a date
 * header are present, never the signature itself. Computing a real HMAC chain per request buys
 * nothing there (decisions/0022). Never used for a remote endpoint.
 */
export const staticLocalSigner: HttpAuthScheme = {
  schemeId: "aws.auth#sigv4",
  identityProvider: (config) => config.getIdentityProvider("aws.auth#sigv4"),
  signer: {
    sign: async (request) => {
      const date = amzDate(new Date())
      request.headers["x-amz-date"] = date
      request.headers.authorization =
        `AWS4-HMAC-SHA256 Credential=aap-local/${date.slice(0, 8)}/us-east-1/dynamodb/aws4_request, ` +
        `SignedHeaders=host;x-amz-date, Signature=${zeros}`
      return request
    }
  }
}
