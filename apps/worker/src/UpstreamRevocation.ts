/**
 * Upstream revocation (DESIGN §9, §12): per-grant provisioned keys (OpenRouter first) are
 * revoked at the provider when their session is revoked (found through the recent revocations,
 * see `RevokedSessions`) or when the session's deadline passes (the provisioned-key records'
 * own `due` index).
 *
 * - Each revoke is retried with exponential backoff (`attemptsPerRun`, from `backoffBase`);
 *   failures are counted in a progress marker, so the bound (`maxAttempts`) holds across
 *   restarts. Once reached the worker gives up loudly and once: a give-up marker is claimed
 *   (conditional create), then the metric `aap_worker_upstream_revocations_total{outcome=
 *   "gave_up"}` and an audit event `credential.revoked` with `outcome: error`. A provider
 *   refusal (4xx other than 404/429) is not retried.
 * - On success: revoke upstream (idempotent: 404 counts as revoked), mark the record revoked,
 *   then audit `credential.revoked`. A kill between the steps repeats the idempotent ones and
 *   never writes the audit event twice (it can at worst be missing; see docs/worker.md).
 *
 * The two ports are the worker's own (narrow, with retry classification);
 * {@link layerCoordination} implements them on the coordination context's `ProvisionedKeys`
 * records, its `Provisioner` (the OpenRouter adapter) and delivery's `Secrets` (the vault) for
 * the management key.
 *
 * @since 0.1.0
 */
import {
  type CoordinationStore,
  DeliveryPorts,
  type Errors,
  ProvisionedKeys,
  Provisioner
} from "@aap/agent-coordination"
import { AuditLog } from "@aap/audit"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Context, Data, DateTime, Duration, Effect, Layer, Option, Redacted, Schedule } from "effect"
import * as Progress from "./Progress.js"
import * as RevokedSessions from "./RevokedSessions.js"
import { WorkerMetrics } from "./WorkerMetrics.js"

/** A provisioned key record (the provider's key hash, never the key). */
export interface ProvisionedKey {
  readonly session: string
  readonly provider: "openrouter"
  readonly hash: string
  readonly wallet: string
  readonly capability: string
  /** Vault name (in `wallet`) of the management key needed to revoke. */
  readonly managementSecret: string
  readonly createdAt: number
  /** Epoch seconds: the session's deadline. */
  readonly expiresAt: number
  readonly revokedAt?: number | undefined
}

/** The records store failed. */
export class RecordsUnavailable extends Data.TaggedError("RecordsUnavailable")<{
  readonly message: string
}> {}

export interface ProvisionedKeyStoreShape {
  /** Unrevoked keys whose session deadline is at or before `now` (epoch seconds). */
  readonly due: (
    now: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<ProvisionedKey>, RecordsUnavailable>
  readonly forSession: (session: string) => Effect.Effect<ReadonlyArray<ProvisionedKey>, RecordsUnavailable>
  /** Idempotent. */
  readonly markRevoked: (key: ProvisionedKey, at: number) => Effect.Effect<void, RecordsUnavailable>
}

export class ProvisionedKeyStore extends Context.Tag("@aap/worker/ProvisionedKeyStore")<
  ProvisionedKeyStore,
  ProvisionedKeyStoreShape
>() {}

/** The provider refused, or could not be reached. */
export class RevokeFailed extends Data.TaggedError("RevokeFailed")<{
  readonly provider: string
  readonly retryable: boolean
  readonly status?: number | undefined
}> {}

export interface UpstreamRevokerShape {
  /** Idempotent: a key that is already gone counts as revoked. */
  readonly revoke: (key: ProvisionedKey) => Effect.Effect<void, RevokeFailed>
}

export class UpstreamRevoker extends Context.Tag("@aap/worker/UpstreamRevoker")<
  UpstreamRevoker,
  UpstreamRevokerShape
>() {}

/** Reads the management key a revoke needs (the vault in production). */
export class ManagementKeys extends Context.Tag("@aap/worker/ManagementKeys")<
  ManagementKeys,
  {
    readonly get: (wallet: string, name: string) => Effect.Effect<Redacted.Redacted<string>, RevokeFailed>
  }
>() {}

/**
 * OpenRouter's key API: `DELETE {baseUrl}/api/v1/keys/{hash}` with the management key as
 * Bearer; 200/204/404 are success, 429/5xx/network errors are retryable, other 4xx are not.
 */
export const layerOpenRouter = (options: {
  readonly baseUrl: string
  readonly timeout?: Duration.DurationInput | undefined
}): Layer.Layer<UpstreamRevoker, never, HttpClient.HttpClient | ManagementKeys> =>
  Layer.effect(
    UpstreamRevoker,
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const keys = yield* ManagementKeys
      const base = options.baseUrl.replace(/\/+$/, "")
      const unreachable = new RevokeFailed({ provider: "openrouter", retryable: true })
      return UpstreamRevoker.of({
        revoke: (key) =>
          Effect.gen(function* () {
            const management = yield* keys.get(key.wallet, key.managementSecret)
            const request = HttpClientRequest.del(`${base}/api/v1/keys/${encodeURIComponent(key.hash)}`).pipe(
              HttpClientRequest.bearerToken(Redacted.value(management)),
              HttpClientRequest.acceptJson
            )
            const status = yield* client.execute(request).pipe(
              Effect.map((res) => res.status),
              Effect.scoped,
              Effect.timeoutFail({ duration: options.timeout ?? "10 seconds", onTimeout: () => unreachable }),
              Effect.catchTags({
                RequestError: () => Effect.fail(unreachable),
                ResponseError: () => Effect.fail(unreachable)
              })
            )
            if (status === 200 || status === 204 || status === 404) return
            return yield* new RevokeFailed({
              provider: "openrouter",
              retryable: status === 429 || status >= 500,
              status
            })
          })
      })
    })
  )

export interface Options {
  /** Tries per key in one run. Default 3. */
  readonly attemptsPerRun?: number | undefined
  /** Tries per key over all runs before giving up. Default 10. */
  readonly maxAttempts?: number | undefined
  /** First backoff delay, doubled per retry. Default 1 second. */
  readonly backoffBase?: Duration.DurationInput | undefined
  /** Due keys handled per run. Default 500. */
  readonly batchSize?: number | undefined
  /** How far back revocations are read. Default 24 h. */
  readonly lookbackSeconds?: number | undefined
}

export interface Result {
  readonly revoked: number
  readonly failed: number
  readonly gaveUp: number
}

const JOB = "upstream-revocation"
const keyId = (k: ProvisionedKey) => `${k.session}#${k.hash}`

export const run = (
  options: Options = {}
): Effect.Effect<
  Result,
  RecordsUnavailable | Progress.ProgressError | Errors.Unavailable,
  | ProvisionedKeyStore
  | UpstreamRevoker
  | AuditLog.AuditLog
  | WorkerMetrics
  | Progress.Progress
  | CoordinationStore.CoordinationStore
> =>
  Effect.gen(function* () {
    const store = yield* ProvisionedKeyStore
    const revoker = yield* UpstreamRevoker
    const audit = yield* AuditLog.AuditLog
    const metrics = yield* WorkerMetrics
    const progress = yield* Progress.Progress
    const attemptsPerRun = Math.max(1, options.attemptsPerRun ?? 3)
    const maxAttempts = Math.max(1, options.maxAttempts ?? 10)
    const base = Duration.decode(options.backoffBase ?? "1 second")
    const now = yield* DateTime.now
    const nowSeconds = Math.floor(DateTime.toEpochMillis(now) / 1000)

    // Candidates: keys of recently revoked, unexpired sessions, then keys whose session ended.
    const candidates = new Map<string, ProvisionedKey>()
    for (const s of yield* RevokedSessions.list(now, options.lookbackSeconds ?? 24 * 3600)) {
      for (const k of yield* store.forSession(s.id))
        if (k.revokedAt === undefined) candidates.set(keyId(k), k)
    }
    for (const k of yield* store.due(nowSeconds, options.batchSize ?? 500)) candidates.set(keyId(k), k)

    let revoked = 0
    let failed = 0
    let gaveUp = 0
    for (const key of candidates.values()) {
      if (Option.isSome(yield* progress.get(JOB, `gave-up#${keyId(key)}`))) continue
      const attemptsEntry = yield* progress.get(JOB, `attempts#${keyId(key)}`)
      const before = Option.match(attemptsEntry, {
        onNone: () => 0,
        onSome: (e) => (typeof e.value.attempts === "number" ? e.value.attempts : 0)
      })
      const budget = Math.min(attemptsPerRun, maxAttempts - before)
      let tries = 0
      const attempt = Effect.suspend(() => {
        tries++
        return revoker.revoke(key)
      }).pipe(
        Effect.tapBoth({
          onSuccess: () => metrics.inc("aap_worker_upstream_revocation_attempts_total", { result: "ok" }),
          onFailure: () => metrics.inc("aap_worker_upstream_revocation_attempts_total", { result: "error" })
        })
      )
      const outcome = yield* (
        budget <= 0
          ? Effect.fail(new RevokeFailed({ provider: key.provider, retryable: false }))
          : attempt.pipe(
              Effect.retry({
                schedule: Schedule.exponential(base, 2).pipe(Schedule.intersect(Schedule.recurs(budget - 1))),
                while: (e) => e.retryable
              })
            )
      ).pipe(Effect.either)
      if (outcome._tag === "Right") {
        const at = Math.floor(DateTime.toEpochMillis(yield* DateTime.now) / 1000)
        yield* store.markRevoked(key, at)
        yield* audit
          .append({
            actor: { type: "system", id: "worker" },
            action: "credential.revoked",
            outcome: "success",
            session: key.session,
            capability: key.capability,
            wallet: key.wallet,
            details: { provider: key.provider, keyHash: key.hash, attempts: before + tries }
          })
          .pipe(
            Effect.catchAll((e) => Effect.logError("audit append failed after an upstream revoke", e.message))
          )
        yield* metrics.inc("aap_worker_upstream_revocations_total", { outcome: "success" })
        revoked++
        continue
      }
      const error = outcome.left
      const total = before + tries
      yield* Progress.set(JOB, `attempts#${keyId(key)}`, { attempts: total })
      if (total < maxAttempts && error.retryable) {
        failed++
        yield* Effect.logWarning("provisioned key not revoked yet; will retry").pipe(
          Effect.annotateLogs({
            session: key.session,
            keyHash: key.hash,
            attempts: total,
            status: error.status ?? ""
          })
        )
        continue
      }
      // Give up, exactly once across workers and restarts.
      gaveUp++
      const first = yield* Progress.claim(JOB, `gave-up#${keyId(key)}`, { attempts: total, at: nowSeconds })
      if (!first) continue
      yield* metrics.inc("aap_worker_upstream_revocations_total", { outcome: "gave_up" })
      yield* Effect.logError("giving up on revoking a provisioned upstream key").pipe(
        Effect.annotateLogs({
          session: key.session,
          keyHash: key.hash,
          provider: key.provider,
          attempts: total,
          status: error.status ?? "",
          upstreamExpiresAt: key.expiresAt
        })
      )
      yield* audit
        .append({
          actor: { type: "system", id: "worker" },
          action: "credential.revoked",
          outcome: "error",
          session: key.session,
          capability: key.capability,
          wallet: key.wallet,
          reason: error.retryable ? "gave-up:unreachable" : `gave-up:refused:${error.status ?? ""}`,
          details: { provider: key.provider, keyHash: key.hash, attempts: total }
        })
        .pipe(Effect.catchAll((e) => Effect.logError("audit append failed while giving up", e.message)))
    }
    return { revoked, failed, gaveUp }
  }).pipe(Effect.withSpan("UpstreamRevocation.run"))

/** An in-memory record store (tests, examples); `keys` is the initial content. */
export const layerMemoryStore = (
  keys: ReadonlyArray<ProvisionedKey>
): Layer.Layer<ProvisionedKeyStore | MemoryStoreView> =>
  Layer.effectContext(
    Effect.sync(() => {
      const items = new Map(keys.map((k) => [keyId(k), k] as const))
      const store = ProvisionedKeyStore.of({
        due: (now, limit) =>
          Effect.sync(() =>
            [...items.values()]
              .filter((k) => k.revokedAt === undefined && k.expiresAt <= now)
              .sort((a, b) => a.expiresAt - b.expiresAt)
              .slice(0, limit)
          ),
        forSession: (session) => Effect.sync(() => [...items.values()].filter((k) => k.session === session)),
        markRevoked: (key, at) =>
          Effect.sync(() => {
            const current = items.get(keyId(key))
            if (current !== undefined && current.revokedAt === undefined)
              items.set(keyId(key), { ...current, revokedAt: at })
          })
      })
      return Context.make(ProvisionedKeyStore, store).pipe(
        Context.add(MemoryStoreView, { all: Effect.sync(() => [...items.values()]) })
      )
    })
  )

/** Read access to {@link layerMemoryStore}'s records. */
export class MemoryStoreView extends Context.Tag("@aap/worker/UpstreamRevocation/MemoryStoreView")<
  MemoryStoreView,
  { readonly all: Effect.Effect<ReadonlyArray<ProvisionedKey>> }
>() {}

/** Management keys from a fixed list (tests). */
export const layerManagementKeys = (
  entries: ReadonlyArray<readonly [wallet: string, name: string, value: string]>
): Layer.Layer<ManagementKeys> =>
  Layer.succeed(
    ManagementKeys,
    ManagementKeys.of({
      get: (wallet, name) => {
        const found = entries.find(([w, n]) => w === wallet && n === name)
        return found === undefined
          ? Effect.fail(new RevokeFailed({ provider: "vault", retryable: false }))
          : Effect.succeed(Redacted.make(found[2]))
      }
    })
  )

/**
 * The ports on the coordination context: records from `ProvisionedKeys` (coordination table,
 * integrity-checked), revocation through its `Provisioner` with the management key read from
 * delivery's `Secrets`. A missing management secret or a provider refusal is not retryable;
 * an unreachable provider or vault is.
 */
export const layerCoordination: Layer.Layer<
  ProvisionedKeyStore | UpstreamRevoker,
  never,
  ProvisionedKeys.ProvisionedKeys | Provisioner.Provisioner | DeliveryPorts.Secrets
> = Layer.effectContext(
  Effect.gen(function* () {
    const records = yield* ProvisionedKeys.ProvisionedKeys
    const provisioner = yield* Provisioner.Provisioner
    const secrets = yield* DeliveryPorts.Secrets
    const unavailable = (e: { readonly _tag: string }) =>
      new RecordsUnavailable({ message: `provisioned-key records unavailable (${e._tag})` })
    const toRecord = (k: ProvisionedKey): ProvisionedKeys.ProvisionedKey => ({
      session: k.session,
      provider: k.provider,
      hash: k.hash,
      wallet: k.wallet,
      capability: k.capability,
      managementSecret: k.managementSecret,
      createdAt: k.createdAt,
      expiresAt: k.expiresAt,
      ...(k.revokedAt === undefined ? {} : { revokedAt: k.revokedAt })
    })
    const store = ProvisionedKeyStore.of({
      due: (now, limit) => records.due(now, limit).pipe(Effect.mapError(unavailable)),
      forSession: (session) => records.forSession(session).pipe(Effect.mapError(unavailable)),
      markRevoked: (key, at) => records.markRevoked(toRecord(key), at).pipe(Effect.mapError(unavailable))
    })
    const revoker = UpstreamRevoker.of({
      revoke: (key) =>
        secrets.get(key.wallet, key.managementSecret).pipe(
          Effect.mapError(
            (e) => new RevokeFailed({ provider: "vault", retryable: e._tag === "SecretsUnavailable" })
          ),
          Effect.flatMap((management) => provisioner.revoke(management, key.hash)),
          Effect.mapError((e) =>
            e._tag === "ProvisionFailed"
              ? new RevokeFailed({
                  provider: e.provider,
                  retryable: e.kind === "unreachable",
                  status: e.status
                })
              : e
          )
        )
    })
    return Context.make(ProvisionedKeyStore, store).pipe(Context.add(UpstreamRevoker, revoker))
  })
)
