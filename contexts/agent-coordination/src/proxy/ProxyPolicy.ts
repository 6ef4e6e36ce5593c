/**
 * What the egress proxy lets through, as pure functions (DESIGN §9, issue 12): the path
 * canonicalisation that refuses traversal, the catalog allow-list of upstream paths and
 * methods, and the header rewriting (hop-by-hop and proxy-token headers out, the real
 * credential in).
 *
 * Paths are checked on the raw request target, segment by segment, before anything is
 * forwarded. A segment is refused when it is, once percent-decoded, `.` or `..` (or only dots,
 * or dots before a `;` parameter), when it decodes to something containing `/`, `\`, `%` (an
 * encoded separator or a second layer of encoding), a control character, or when it is empty
 * (`//`) or not valid percent-encoding. What survives has exactly one decoded meaning, so the
 * allow-list (matched on the decoded path) and the upstream (which receives the raw segments)
 * agree on which resource is meant.
 *
 * @since 0.1.0
 */
import type { Catalog } from "@aap/catalog"
import { Either } from "effect"

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/** Why a request target was refused before the allow-list was consulted. */
export type PathProblem =
  | "empty-segment"
  | "dot-segment"
  | "encoded-separator"
  | "double-encoding"
  | "control-character"
  | "bad-encoding"
  | "backslash"
  | "too-long"

/** A request path that passed the traversal checks. */
export interface CheckedPath {
  /** The raw segments joined with `/`, leading `/` included: what the upstream receives. */
  readonly raw: string
  /** The same path percent-decoded: what the allow-list is matched against. */
  readonly decoded: string
}

const MAX_PATH = 4096
const HEX2 = /%[0-9A-Fa-f]{2}/
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/
const DOTS = /^\.+(?:;.*)?$/

/**
 * Checks the part of the request path after the proxy prefix (`""`, `/`, `/v1/messages`...).
 * The query string must already be split off.
 */
export const checkPath = (rawPath: string): Either.Either<CheckedPath, PathProblem> => {
  if (rawPath.length > MAX_PATH) return Either.left("too-long")
  if (rawPath === "" || rawPath === "/") return Either.right({ raw: "", decoded: "" })
  if (rawPath.includes("\\")) return Either.left("backslash")
  if (CONTROL.test(rawPath)) return Either.left("control-character")
  const body = rawPath.startsWith("/") ? rawPath.slice(1) : rawPath
  const segments = body.split("/")
  const decoded: Array<string> = []
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string
    // A single trailing slash is a legitimate part of some APIs' paths; empty segments elsewhere are not.
    if (segment === "") {
      if (i === segments.length - 1 && i > 0) {
        decoded.push("")
        continue
      }
      return Either.left("empty-segment")
    }
    let plain: string
    try {
      plain = decodeURIComponent(segment)
    } catch {
      return Either.left("bad-encoding")
    }
    if (DOTS.test(plain)) return Either.left("dot-segment")
    if (plain !== segment) {
      if (plain.includes("/")) return Either.left("encoded-separator")
      if (plain.includes("\\")) return Either.left("backslash")
      if (CONTROL.test(plain)) return Either.left("control-character")
      if (HEX2.test(plain) || plain.includes("%")) return Either.left("double-encoding")
    }
    decoded.push(plain)
  }
  return Either.right({ raw: `/${segments.join("/")}`, decoded: `/${decoded.join("/")}` })
}

/** A human sentence for a path problem (no echo of the path itself beyond its kind). */
export const describePathProblem = (problem: PathProblem): string => {
  switch (problem) {
    case "empty-segment":
      return "the path has an empty segment (//)"
    case "dot-segment":
      return "the path has a . or .. segment (plain or percent-encoded)"
    case "encoded-separator":
      return "the path has an encoded / in a segment"
    case "double-encoding":
      return "the path is percent-encoded twice"
    case "control-character":
      return "the path has a control character"
    case "bad-encoding":
      return "the path is not valid percent-encoding"
    case "backslash":
      return "the path has a backslash"
    case "too-long":
      return `the path is longer than ${MAX_PATH} characters`
  }
}

// ---------------------------------------------------------------------------------------------
// Upstream and allow-list
// ---------------------------------------------------------------------------------------------

/** The upstream of a `proxy` block, parsed once. */
export interface Upstream {
  readonly protocol: "https:"
  readonly hostname: string
  readonly port: number
  /** `host` or `host:port` as sent in the `Host` header. */
  readonly host: string
  /** The upstream's base path without a trailing slash (`""` or `/api`). */
  readonly basePath: string
  /** The same, decoded (for the allow-list). */
  readonly basePathDecoded: string
}

const upstreamCache = new Map<string, Upstream>()

/** Parses `https://host[:port][/base]` (the catalog validated the shape). Memoised. */
export const upstreamOf = (proxy: Catalog.BearerProxy): Upstream => {
  const hit = upstreamCache.get(proxy.upstream)
  if (hit !== undefined) return hit
  const url = new URL(proxy.upstream)
  const basePath = url.pathname.replace(/\/+$/, "")
  const upstream: Upstream = {
    protocol: "https:",
    hostname: url.hostname,
    port: url.port === "" ? 443 : Number(url.port),
    host: url.host,
    basePath,
    basePathDecoded: safeDecode(basePath)
  }
  if (upstreamCache.size > 1000) upstreamCache.clear()
  upstreamCache.set(proxy.upstream, upstream)
  return upstream
}

const safeDecode = (s: string): string => {
  try {
    return decodeURI(s)
  } catch {
    return s
  }
}

/** Whether an upstream path (decoded, base path included) is in the allow-list. */
export const pathAllowed = (patterns: ReadonlyArray<string>, decodedUpstreamPath: string): boolean => {
  for (const pattern of patterns) {
    if (pattern.endsWith("*")) {
      if (decodedUpstreamPath.startsWith(pattern.slice(0, -1))) return true
    } else if (decodedUpstreamPath === pattern) {
      return true
    }
  }
  return false
}

/** Whether the method is in the allow-list (exact, upper case; `HEAD` is not implied by `GET`). */
export const methodAllowed = (methods: ReadonlyArray<string>, method: string): boolean =>
  methods.includes(method.toUpperCase())

/** The refusal of one request by the policy. */
export type Refusal =
  | { readonly _tag: "BadPath"; readonly problem: PathProblem }
  | { readonly _tag: "PathNotAllowed"; readonly path: string }
  | { readonly _tag: "MethodNotAllowed"; readonly method: string }

/** A request the policy lets through: where it goes. */
export interface Target {
  readonly upstream: Upstream
  /** Raw upstream path (base path + forwarded path), what goes on the request line. */
  readonly path: string
  /** Decoded upstream path, what the audit records. */
  readonly decodedPath: string
}

/** Checks method and path of one request against a `proxy` block. */
export const decide = (
  proxy: Catalog.BearerProxy,
  method: string,
  rawPath: string
): Either.Either<Target, Refusal> => {
  const checked = checkPath(rawPath)
  if (Either.isLeft(checked)) return Either.left({ _tag: "BadPath", problem: checked.left })
  const upstream = upstreamOf(proxy)
  const path = `${upstream.basePath}${checked.right.raw}` || "/"
  const decodedPath = `${upstream.basePathDecoded}${checked.right.decoded}` || "/"
  if (!methodAllowed(proxy.methods, method)) return Either.left({ _tag: "MethodNotAllowed", method })
  if (!pathAllowed(proxy.paths, decodedPath))
    return Either.left({ _tag: "PathNotAllowed", path: decodedPath })
  return Either.right({ upstream, path, decodedPath })
}

/**
 * Forward-proxy mode (ADR 0081): `rawPath` is already the full upstream path (base path
 * included), as sent inside an intercepted tunnel; same traversal checks and allow-lists.
 */
export const decideUpstream = (
  proxy: Catalog.BearerProxy,
  method: string,
  rawPath: string
): Either.Either<Target, Refusal> => {
  const checked = checkPath(rawPath)
  if (Either.isLeft(checked)) return Either.left({ _tag: "BadPath", problem: checked.left })
  const upstream = upstreamOf(proxy)
  const path = checked.right.raw || "/"
  const decodedPath = checked.right.decoded || "/"
  if (!methodAllowed(proxy.methods, method)) return Either.left({ _tag: "MethodNotAllowed", method })
  if (!pathAllowed(proxy.paths, decodedPath))
    return Either.left({ _tag: "PathNotAllowed", path: decodedPath })
  return Either.right({ upstream, path, decodedPath })
}

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

/** RFC 9110 §7.6.1 connection-specific headers, never forwarded in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade"
])

/** Headers that may carry the proxy token; always removed before forwarding. */
export const TOKEN_HEADERS: ReadonlyArray<string> = [
  "authorization",
  "x-aap-proxy-token",
  "proxy-authorization"
]

/** The header the agent's SDK puts its "API key" (our proxy token) in, lower case. */
export const credentialHeader = (proxy: Catalog.BearerProxy): string => proxy.header.toLowerCase()

/** `Bearer <token>` / `<token>`: the injected header value for a secret. */
export const credentialValue = (proxy: Catalog.BearerProxy, secret: string): string =>
  proxy.scheme === undefined ? secret : `${proxy.scheme} ${secret}`

type HeaderValue = string | ReadonlyArray<string> | undefined

const connectionTokens = (value: HeaderValue): ReadonlyArray<string> => {
  if (value === undefined) return []
  const joined = typeof value === "string" ? value : value.join(",")
  return joined
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== "")
}

/**
 * The request headers to send upstream: hop-by-hop headers (and those the `Connection` header
 * names), every header that can carry the proxy token and `Host` removed; the real credential
 * set under the catalog's header name. Node's `IncomingMessage.headers` shape in and out.
 */
export const upstreamRequestHeaders = (
  incoming: Readonly<Record<string, HeaderValue>>,
  proxy: Catalog.BearerProxy,
  upstreamHost: string,
  credential: string
): Record<string, string | Array<string>> => {
  const drop = new Set(connectionTokens(incoming.connection))
  const injected = credentialHeader(proxy)
  const out: Record<string, string | Array<string>> = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined) continue
    if (HOP_BY_HOP.has(name) || drop.has(name)) continue
    if (name === "host" || name === injected || TOKEN_HEADERS.includes(name)) continue
    // Wherever else the agent put its proxy token, it does not travel upstream.
    if ((typeof value === "string" ? value : value.join(",")).includes(TOKEN_PREFIX)) continue
    out[name] = typeof value === "string" ? value : [...value]
  }
  out.host = upstreamHost
  out[injected] = credential
  return out
}

/**
 * The response headers to send back to the agent: hop-by-hop headers removed, and any header
 * whose value contains the secret dropped (an upstream that echoes the key must not hand it
 * to the agent). Bodies are not scanned (docs/proxy.md, limits).
 */
export const downstreamResponseHeaders = (
  incoming: Readonly<Record<string, HeaderValue>>,
  secret: string
): Record<string, string | Array<string>> => {
  const drop = new Set(connectionTokens(incoming.connection))
  const out: Record<string, string | Array<string>> = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined) continue
    if (HOP_BY_HOP.has(name) || drop.has(name)) continue
    if (secret.length > 0 && (typeof value === "string" ? value : value.join("\n")).includes(secret)) continue
    out[name] = typeof value === "string" ? value : [...value]
  }
  return out
}

const tokenIn = (name: string, raw: string): string | undefined => {
  const value = raw.trim()
  const space = value.indexOf(" ")
  const scheme = space === -1 ? "" : value.slice(0, space).toLowerCase()
  const rest = space === -1 ? value : value.slice(space + 1).trim()
  if (scheme === "basic" && (name === "authorization" || name === "proxy-authorization")) {
    const userPass = Buffer.from(rest, "base64").toString("utf8")
    const colon = userPass.indexOf(":")
    const password = colon === -1 ? userPass : userPass.slice(colon + 1)
    return password.startsWith(TOKEN_PREFIX) ? password : undefined
  }
  return rest.startsWith(TOKEN_PREFIX) ? rest : undefined
}

/**
 * The proxy token presented by the agent: `x-aap-proxy-token` first, then any other header
 * whose value is a proxy token, bare or after a scheme (`Authorization: Bearer aap_pxy_…`,
 * `x-api-key: aap_pxy_…` — wherever the agent's SDK puts its "API key"), or the password of
 * `Basic` credentials in `Authorization` / `Proxy-Authorization`. `undefined` when none is.
 * The capability (and so its credential header) is not known before the token is checked,
 * hence the scan; a request has a few dozen headers at most.
 */
export const presentedToken = (headers: Readonly<Record<string, HeaderValue>>): string | undefined => {
  const first = (name: string, value: HeaderValue): string | undefined => {
    if (value === undefined) return undefined
    if (typeof value === "string") return tokenIn(name, value)
    for (const v of value) {
      const t = tokenIn(name, v)
      if (t !== undefined) return t
    }
    return undefined
  }
  const explicit = first("x-aap-proxy-token", headers["x-aap-proxy-token"])
  if (explicit !== undefined) return explicit
  for (const name in headers) {
    const t = first(name, headers[name])
    if (t !== undefined) return t
  }
  return undefined
}

/** The prefix of every proxy token (recognisable to secret scanners). */
export const TOKEN_PREFIX = "aap_pxy_"
