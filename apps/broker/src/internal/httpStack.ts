/**
 * The HTTP plumbing around the composed HttpApi: error normalisation (every error is JSON
 * `{_tag, message}` with a §10 status), body limit, per-request timeout, request/trace ids,
 * access logs, metrics, and a graceful drain on shutdown.
 */
import type * as Http from "node:http"
import { Api as VaultApi } from "@aap/vault"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiError,
  type HttpApp,
  HttpIncomingMessage,
  HttpMethod,
  HttpMiddleware,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Cause, Deferred, Duration, Effect, Fiber, FiberRef, identity, Layer, Option } from "effect"
import { Api } from "../Api.js"
import { InternalError, PayloadTooLarge, RequestTimeout, RouteNotFound } from "../BrokerErrors.js"
import { BrokerMetrics, type Instruments, requestIdFrom, traceIdFrom } from "./observability.js"

/** Maps a request to the route pattern it matches, for metric labels. */
export interface RouteMatcher {
  readonly match: (method: string, path: string) => string
}

export const makeRouteMatcher = (api: HttpApi.HttpApi.Any): RouteMatcher => {
  const routes: Array<{ method: string; re: RegExp; pattern: string }> = []
  HttpApi.reflect(api as HttpApi.HttpApi.AnyWithProps, {
    onGroup() {},
    onEndpoint({ endpoint }) {
      const pattern = endpoint.path
      const re = new RegExp(
        "^" +
          pattern
            .split("/")
            .map((seg) =>
              seg.startsWith(":")
                ? seg.endsWith("*")
                  ? "(.+)"
                  : "([^/]+)"
                : seg === "*"
                  ? "(.*)"
                  : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
            )
            .join("/") +
          "$"
      )
      routes.push({ method: endpoint.method, re, pattern })
    }
  })
  routes.push({ method: "GET", re: /^\/openapi\.json$/, pattern: "/openapi.json" })
  routes.push({ method: "GET", re: /^\/docs$/, pattern: "/docs" })
  const cache = new Map<string, string>()
  return {
    match: (method, path) => {
      const key = method + " " + path
      const hit = cache.get(key)
      if (hit !== undefined) return hit
      const found = routes.find((r) => r.method === method && r.re.test(path))?.pattern ?? "unmatched"
      if (cache.size < 10_000) cache.set(key, found)
      return found
    }
  }
}

/** The message of the typed error a request failed with, keyed by request (see `ensureMessage`). */
const errorMessages = new WeakMap<HttpServerRequest.HttpServerRequest, string>()

const decoder = new TextDecoder()

/** Error bodies always carry `_tag` and `message` (DESIGN §10). */
const ensureMessage = (
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse
): HttpServerResponse.HttpServerResponse => {
  if (response.status < 400) return response
  if (response.body._tag === "Empty") {
    const tag = response.status >= 500 ? "InternalError" : response.status === 404 ? "NotFound" : "BadRequest"
    return HttpServerResponse.unsafeJson(
      { _tag: tag, message: errorMessages.get(request) ?? `request failed with status ${response.status}` },
      { status: response.status, headers: response.headers }
    )
  }
  if (response.body._tag !== "Uint8Array") return response
  try {
    const body: unknown = JSON.parse(decoder.decode(response.body.body))
    if (body === null || typeof body !== "object" || Array.isArray(body)) return response
    const record = body as Record<string, unknown>
    if (typeof record.message === "string" && typeof record._tag === "string") return response
    const message =
      typeof record.message === "string"
        ? record.message
        : (errorMessages.get(request) ?? String(record._tag ?? "error"))
    const fixed = { _tag: typeof record._tag === "string" ? record._tag : "Error", message, ...record }
    fixed.message = message
    return HttpServerResponse.unsafeJson(fixed, { status: response.status, headers: response.headers })
  } catch {
    return response
  }
}

type TransportError =
  | HttpApiError.HttpApiDecodeError
  | RouteNotFound
  | PayloadTooLarge
  | RequestTimeout
  | InternalError

const isRequestError = (u: unknown): u is HttpServerError.RequestError =>
  HttpServerError.isServerError(u) && u._tag === "RequestError"

const causeMessage = (u: unknown): string =>
  u !== null && typeof u === "object" && "cause" in u && u.cause instanceof Error ? u.cause.message : ""

/** Issues from the schema decoder, without the offending values (they may be secrets). */
const sanitizeDecodeError = (e: HttpApiError.HttpApiDecodeError): HttpApiError.HttpApiDecodeError => {
  const issues = e.issues.map((i) => ({
    _tag: i._tag,
    path: i.path,
    message:
      i._tag === "Missing"
        ? "is missing"
        : i._tag === "Unexpected"
          ? "is not allowed"
          : i._tag === "Type" || i._tag === "Refinement" || i._tag === "Transformation"
            ? `is not valid${i.message.match(/^Expected ([^,]{1,80}),/)?.[1] ? ` (expected ${i.message.match(/^Expected ([^,]{1,80}),/)?.[1]})` : ""}`
            : "is not valid"
  }))
  const where = issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(body)"} ${i.message}`)
    .join("; ")
  return new HttpApiError.HttpApiDecodeError({
    issues,
    message: `invalid request: ${where || "could not decode the request"}`
  })
}

/**
 * `Effect.timeoutFail` for the per-request timeout, at a third of its cost (ADR 0056): `self`
 * runs in one child fiber watched by a plain timer, where `timeoutFail` races two fibers (the
 * effect and an Effect `sleep`) on every request. Same outcome: the child's value with its
 * fiber refs inherited (`Fiber.join`), its failure, or, once `millis` have passed, the child
 * interrupted (its finalizers run) and `onTimeout()` failed. Interrupting the caller interrupts
 * the child.
 */
export const withDeadline =
  <E2>(millis: number, onTimeout: () => E2) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.fork(restore(self)), (fiber) =>
        restore(
          Effect.async<boolean>((resume) => {
            let settled = false
            const observer = () => {
              if (settled) return
              settled = true
              clearTimeout(timer)
              resume(Effect.succeed(true))
            }
            const timer = setTimeout(() => {
              if (settled) return
              settled = true
              fiber.removeObserver(observer)
              resume(Effect.succeed(false))
            }, millis)
            fiber.addObserver(observer)
            return Effect.sync(() => {
              settled = true
              clearTimeout(timer)
              fiber.removeObserver(observer)
            })
          })
        ).pipe(
          Effect.onInterrupt(() => Fiber.interrupt(fiber)),
          Effect.flatMap(
            (finished): Effect.Effect<A, E | E2> =>
              finished ? Fiber.join(fiber) : Effect.zipRight(Fiber.interrupt(fiber), Effect.fail(onTimeout()))
          )
        )
      )
    )

/**
 * Api-level middleware (inside the HttpApi error encoder): turns transport failures into typed
 * errors so they are encoded like every other error.
 */
export const apiMiddlewareLayer = (options: {
  readonly requestTimeout: Duration.Duration
}): Layer.Layer<never> => {
  const timeoutMessage = `the request did not complete within ${Duration.format(options.requestTimeout)}`
  const fn = (app: HttpApp.Default): HttpApp.Default<TransportError> =>
    app.pipe(
      Effect.catchAllCause(
        (cause): Effect.Effect<never, TransportError, HttpServerRequest.HttpServerRequest> => {
          const failure: unknown = Option.getOrUndefined(Cause.failureOption(cause))
          if (failure instanceof HttpApiError.HttpApiDecodeError)
            return Effect.fail(sanitizeDecodeError(failure))
          if (HttpServerError.isServerError(failure) && failure._tag === "RouteNotFound") {
            return Effect.fail(
              new RouteNotFound({
                message: `no route for ${failure.request.method} ${failure.request.url.split("?")[0]}`
              })
            )
          }
          if (failure instanceof Error && failure.message.length > 0) {
            // Some errors compute `message` with a getter that the wire encoding omits; the
            // outer middleware puts it into the body so every error has `{_tag, message}`.
            return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
              errorMessages.set(request, failure.message)
              return Effect.failCause(cause)
            })
          }
          if (failure instanceof HttpApiError.HttpApiDecodeError)
            return Effect.fail(sanitizeDecodeError(failure))
          if (failure !== undefined || Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
          const defect: unknown = Option.getOrUndefined(Cause.dieOption(cause))
          if (isRequestError(defect) && defect.reason === "Decode") {
            return causeMessage(defect) === "maxBytes exceeded"
              ? Effect.fail(new PayloadTooLarge({ message: "the request body is too large" }))
              : Effect.fail(
                  new HttpApiError.HttpApiDecodeError({
                    issues: [],
                    message: "malformed request body: expected JSON"
                  })
                )
          }
          return Effect.logError("unhandled defect", cause).pipe(
            Effect.zipRight(Effect.fail(new InternalError({ message: "internal error; see the broker log" })))
          )
        }
      ),
      withDeadline(
        Duration.toMillis(options.requestTimeout),
        () => new RequestTimeout({ message: timeoutMessage })
      )
    )
  return HttpApiBuilder.middleware(Api, fn)
}

/** Tracks in-flight requests so shutdown can drain them. */
export interface Drain {
  readonly begin: () => boolean
  readonly end: () => void
  readonly inFlight: () => number
  readonly close: (grace: Duration.Duration) => Effect.Effect<void>
  readonly isDraining: () => boolean
}

export const makeDrain = (): Drain => {
  let inFlight = 0
  let draining = false
  let idle: Deferred.Deferred<void> | undefined
  return {
    begin: () => {
      if (draining) return false
      inFlight++
      return true
    },
    end: () => {
      inFlight--
      if (inFlight === 0 && idle !== undefined) Deferred.unsafeDone(idle, Effect.void)
    },
    inFlight: () => inFlight,
    isDraining: () => draining,
    close: (grace) =>
      Effect.gen(function* () {
        draining = true
        if (inFlight === 0) return
        idle = yield* Deferred.make<void>()
        yield* Effect.logInfo("draining in-flight requests", { inFlight, graceMs: Duration.toMillis(grace) })
        yield* Deferred.await(idle).pipe(Effect.timeoutOption(grace), Effect.asVoid)
      })
  }
}

const json413 = HttpServerResponse.unsafeJson(
  { _tag: "PayloadTooLarge", message: "the request body is too large" },
  { status: 413, headers: { connection: "close" } }
)
const json503 = HttpServerResponse.unsafeJson(
  { _tag: "ShuttingDown", message: "the broker is shutting down" },
  { status: 503, headers: { connection: "close" } }
)

/** Deepest nesting of arrays and objects a request body may have; our payloads need two or three. */
export const MAX_JSON_DEPTH = 32

/**
 * Whether `text` nests arrays/objects deeper than `max` (strings skipped, escapes honoured).
 * Checked before decoding: a body nested thousands deep would otherwise overflow the stack in
 * the schema decoder and answer 500.
 */
export const jsonDepthExceeds = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      if (++depth > max) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}

const badRequest = (message: string) =>
  HttpServerResponse.unsafeJson({ _tag: "HttpApiDecodeError", issues: [], message }, { status: 400 })

const multipartRefused = badRequest(
  "multipart and form bodies are not accepted: send the request body as application/json"
)
const tooDeep = badRequest(`malformed request body: JSON nested deeper than ${MAX_JSON_DEPTH} levels`)

/**
 * Refuses, before the HttpApi decodes them, the bodies no endpoint accepts: multipart and
 * url-encoded forms (the platform would parse them, persisting file parts to disk, and fail
 * with a defect) and JSON nested deeper than `MAX_JSON_DEPTH`. Runs on the request instance
 * the handlers see, so the body text it reads is the one they decode (the platform caches it).
 */
const guardBody = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    if (!HttpMethod.hasBody(request.method)) return app
    const contentType = (request.headers["content-type"] ?? "application/json").toLowerCase()
    if (contentType.includes("multipart/") || contentType.includes("x-www-form-urlencoded"))
      return Effect.succeed(multipartRefused)
    if (!contentType.includes("application/json")) return app
    // A failed read (a body over the limit, a broken stream) is cached by the platform and
    // surfaces through the app's own decoding, which maps it to 413 or 400.
    return Effect.matchEffect(request.text, {
      onFailure: () => app,
      onSuccess: (text) => (jsonDepthExceeds(text, MAX_JSON_DEPTH) ? Effect.succeed(tooDeep) : app)
    })
  })

/** Outermost middleware: ids, body limit, drain, access log and metrics. */
export const outerMiddleware =
  (options: {
    readonly maxBodyBytes: number
    readonly routes: RouteMatcher
    readonly drain: Drain
    /** Where access log lines go; `undefined` turns them off (log level above info). */
    readonly accessLog: ((line: string) => void) | undefined
    /** The broker's instruments, taken once when the server starts (not looked up per request). */
    readonly metrics: Instruments
  }) =>
  <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const metrics = options.metrics
      const started = performance.now()
      const headers = request.headers
      const requestId = requestIdFrom(headers["x-request-id"])
      const traceId = traceIdFrom(headers.traceparent)
      const q = request.url.indexOf("?")
      const path = q === -1 ? request.url : request.url.slice(0, q)
      const route = options.routes.match(request.method, path)
      let response: HttpServerResponse.HttpServerResponse
      if (!options.drain.begin()) {
        response = json503
      } else {
        const length = Number(headers["content-length"] ?? "0")
        if (Number.isFinite(length) && length > options.maxBodyBytes) {
          options.drain.end()
          response = json413
        } else {
          const canonical = path.startsWith("/v1/wallets/")
            ? VaultApi.canonicalSecretPath(request.url)
            : request.url
          response = yield* guardBody(app).pipe(
            canonical === request.url
              ? identity
              : Effect.provideService(
                  HttpServerRequest.HttpServerRequest,
                  request.modify({ url: canonical })
                ),
            Effect.annotateLogs({ requestId, traceId }),
            Effect.ensuring(Effect.sync(options.drain.end))
          )
        }
      }
      const seconds = (performance.now() - started) / 1000
      const labels = { method: request.method, route, status: String(response.status) }
      metrics.httpRequests.inc(labels)
      metrics.httpDuration.observe(labels, seconds)
      if (options.accessLog !== undefined) {
        // Written directly (no logger fiber machinery on the hot path); every field is a
        // non-secret scalar, so nothing needs redacting.
        options.accessLog(
          JSON.stringify({
            ts: new Date().toISOString(),
            level: "info",
            msg: "request",
            requestId,
            traceId,
            method: request.method,
            route,
            status: response.status,
            durationMs: Math.round(seconds * 100_000) / 100
          })
        )
      }
      if (response.status === 413) response = HttpServerResponse.setHeader(response, "connection", "close")
      return HttpServerResponse.setHeaders(ensureMessage(request, response), {
        "x-request-id": requestId,
        "x-trace-id": traceId
      })
    })

/**
 * Serves the HttpApi on the given node server with the outer middleware, and drains in-flight
 * requests (bounded by `grace`) before the server stops and the layers below (audit, store)
 * are finalised.
 */
export const serveLayer = (options: {
  readonly server: Http.Server
  readonly maxBodyBytes: number
  readonly grace: Duration.Duration
  readonly accessLog: ((line: string) => void) | undefined
}): Layer.Layer<
  never,
  never,
  HttpApi.Api | HttpServer.HttpServer | BrokerMetrics | HttpApiBuilder.Router | HttpApiBuilder.Middleware
> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const { api } = yield* HttpApi.Api
      const app = yield* HttpApiBuilder.httpApp
      const server = yield* HttpServer.HttpServer
      const drain = makeDrain()
      const routes = makeRouteMatcher(api)
      const wrapped = outerMiddleware({
        maxBodyBytes: options.maxBodyBytes,
        routes,
        drain,
        accessLog: options.accessLog,
        metrics: yield* BrokerMetrics
      })(app)
      // The platform wraps every request in its tracing middleware (a server span, the URL
      // parsed, request and response headers redacted into span attributes). With the tracer
      // disabled (the broker exports no spans, ADR 0052) all of that is thrown away, so it is
      // switched off; request and trace ids, the access log and metrics are the broker's own
      // (ADR 0054). A broker built with a tracer enabled keeps the platform's spans.
      const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)
      yield* server
        // the app's requirements are all in this layer's context, which `serve` runs requests in
        .serve(wrapped as HttpApp.Default<unknown>)
        .pipe(
          tracing ? identity : Effect.locally(HttpMiddleware.currentTracerDisabledWhen, () => true),
          // the body limit for reads, set once for every request rather than per request
          // (a FiberRef set copies the fiber's refs; ADR 0056)
          HttpIncomingMessage.withMaxBodySize(Option.some(options.maxBodyBytes))
        )
      // Registered after `serve`, so it runs first on shutdown: refuse new requests, let the
      // in-flight ones finish, then close idle keep-alive connections.
      yield* Effect.addFinalizer(() =>
        drain.close(options.grace).pipe(
          Effect.zipRight(
            Effect.sync(() => {
              options.server.closeIdleConnections()
            })
          )
        )
      )
    })
  )
