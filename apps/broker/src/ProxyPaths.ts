/**
 * Paths of the egress proxy that clients need, in a module of their own: the CLI imports them
 * without pulling in the proxy (and the AWS SDK behind it).
 *
 * @since 0.1.0
 */

/** Where the broker serves its operator CA certificate when TLS interception is on (ADR 0082). */
export const FORWARD_PROXY_CA_PATH = "/v1/forward-proxy/ca.pem"
