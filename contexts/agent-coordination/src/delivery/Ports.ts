/**
 * What delivery needs from the rest of the system, as small ports of its own. Each has a
 * memory adapter for tests and the embedded mode; the adapters onto the real contexts
 * (`@aap/vault`'s `SecretStore`, the session repository) are thin layers the broker chooses.
 * The audit log (`@aap/audit` `AuditLog`) and the catalog (`CurrentCatalog`) are used as they are.
 *
 * Keeping these narrow is what lets the invariant tests count every vault read and every
 * audit append (DESIGN §9, issue 7).
 *
 * @since 0.1.0
 */
import type { Catalog } from "@aap/catalog"
import { SecretStore } from "@aap/vault"
import { Context, Data, type DateTime, Effect, Layer, Option, Redacted } from "effect"
import type { Tampered, Unavailable } from "../Errors.js"
import { SessionRepository } from "../SessionRepository.js"

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

/** The statuses of DESIGN §9. Expiry is evaluated by the session service on read. */
export type SessionStatus = "pending_approval" | "active" | "expired" | "revoked" | "denied"

/** What delivery reads of a session. It holds no secret (DESIGN §2.4). */
export interface SessionView {
  readonly id: string
  readonly agent: string
  readonly wallet: string
  readonly capability: string
  readonly tier: Catalog.Tier
  readonly status: SessionStatus
  readonly expiresAt: DateTime.Utc
}

/** The session does not exist. (Another agent's session is reported the same way by delivery.) */
export class SessionMissing extends Data.TaggedError("SessionMissing")<{ readonly session: string }> {}

/** The coordination store could not be read. */
export class SessionsUnavailable extends Data.TaggedError("SessionsUnavailable")<{
  readonly reason: string
}> {}

/** Read one session by id, with expiry already applied. */
export class Sessions extends Context.Tag("@aap/agent-coordination/delivery/Sessions")<
  Sessions,
  { readonly get: (id: string) => Effect.Effect<SessionView, SessionMissing | Tampered | Unavailable> }
>() {}

/** A memory adapter over a mutable map (tests, examples). */
export const sessionsFromMap = (sessions: ReadonlyMap<string, SessionView>): Layer.Layer<Sessions> =>
  Layer.succeed(
    Sessions,
    Sessions.of({
      get: (id) =>
        Effect.suspend(() => {
          const s = sessions.get(id)
          return s === undefined ? Effect.fail(new SessionMissing({ session: id })) : Effect.succeed(s)
        })
    })
  )

/** Over the coordination `SessionRepository`; delivery re-checks expiry against its own clock. */
export const sessionsFromRepository: Layer.Layer<Sessions, never, SessionRepository> = Layer.effect(
  Sessions,
  Effect.map(SessionRepository, (repo) =>
    Sessions.of({
      get: (id) =>
        repo.get(id).pipe(
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.fail(new SessionMissing({ session: id })),
              onSome: (s) =>
                Effect.succeed<SessionView>({
                  id: s.id,
                  agent: s.agent,
                  wallet: s.wallet,
                  capability: s.capability,
                  tier: s.tier,
                  status: s.status,
                  expiresAt: s.expiresAt
                })
            })
          )
        )
    })
  )
)

// ---------------------------------------------------------------------------------------------
// Secrets (the vault)
// ---------------------------------------------------------------------------------------------

/** No live version of the secret in that wallet. */
export class SecretMissing extends Data.TaggedError("SecretMissing")<{
  readonly wallet: string
  readonly name: string
}> {}

/** The vault (store or keys) is unavailable, or the ciphertext failed to open. */
export class SecretsUnavailable extends Data.TaggedError("SecretsUnavailable")<{ readonly reason: string }> {}

/** Decrypt-on-read access to the vault, per wallet. */
export class Secrets extends Context.Tag("@aap/agent-coordination/delivery/Secrets")<
  Secrets,
  {
    readonly get: (
      wallet: string,
      name: string
    ) => Effect.Effect<Redacted.Redacted<string>, SecretMissing | SecretsUnavailable>
    readonly put: (
      wallet: string,
      name: string,
      value: Redacted.Redacted<string>
    ) => Effect.Effect<void, SecretsUnavailable>
  }
>() {}

/** An in-memory vault (plaintext in process memory; tests and examples only). */
export const secretsMemory = (
  initial: ReadonlyArray<readonly [wallet: string, name: string, value: string]> = []
): Layer.Layer<Secrets> =>
  Layer.sync(Secrets, () => {
    const store = new Map<string, Redacted.Redacted<string>>()
    for (const [w, n, v] of initial) store.set(`${w}\u0000${n}`, Redacted.make(v))
    return Secrets.of({
      get: (wallet, name) =>
        Effect.suspend(() => {
          const v = store.get(`${wallet}\u0000${name}`)
          return v === undefined ? Effect.fail(new SecretMissing({ wallet, name })) : Effect.succeed(v)
        }),
      put: (wallet, name, value) => Effect.sync(() => void store.set(`${wallet}\u0000${name}`, value))
    })
  })

/**
 * Over `@aap/vault`'s `SecretStore` (envelope-encrypted, memory or DynamoDB). A missing or
 * deleted secret is `SecretMissing`; every other vault failure (store, keys, integrity) is
 * `SecretsUnavailable` with the vault error's tag as reason — never a value.
 */
export const secretsFromVault: Layer.Layer<Secrets, never, SecretStore.SecretStore> = Layer.effect(
  Secrets,
  Effect.map(SecretStore.SecretStore, (vault) =>
    Secrets.of({
      get: (wallet, name) =>
        vault.get(wallet, name).pipe(
          Effect.map((secret) => secret.value),
          Effect.mapError((e) =>
            e._tag === "SecretNotFound"
              ? new SecretMissing({ wallet, name })
              : new SecretsUnavailable({ reason: e._tag })
          )
        ),
      put: (wallet, name, value) =>
        vault.put(wallet, name, value).pipe(
          Effect.asVoid,
          Effect.mapError((e) => new SecretsUnavailable({ reason: e._tag }))
        )
    })
  )
)
