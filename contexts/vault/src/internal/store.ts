import { Envelope, type KeyCustodyError, KeyProvider } from "@aap/key-custody"
import { Clock, Effect, Either, Option, Redacted } from "effect"
import * as Secret from "../Secret.js"
import type { SecretStoreShape } from "../SecretStore.js"
import {
  InvalidSecretValue,
  SecretIntegrityError,
  SecretNotFound,
  SecretTooLarge,
  SecretUnrecoverable,
  VaultUnavailable
} from "../VaultError.js"
import { type Backend, BackendError, Conflict, type EnvelopeRecord, type Row } from "./backend.js"

/** A write that loses the race for a version retries this often before giving up. */
const MAX_WRITE_ATTEMPTS = 500

const unavailable = (error: BackendError): VaultUnavailable => new VaultUnavailable({ reason: error.reason })

type KeyError = KeyCustodyError.KeyProviderError | KeyCustodyError.InvalidEnvelope

const keyError =
  (address: Envelope.Address) =>
  (error: KeyError): Effect.Effect<never, SecretIntegrityError | SecretUnrecoverable | VaultUnavailable> => {
    switch (error._tag) {
      case "DecryptFailed":
      case "InvalidEnvelope":
        return Effect.fail(new SecretIntegrityError(address))
      case "KeyNotFound":
        return Effect.fail(new SecretUnrecoverable(address))
      case "KmsUnavailable":
      case "KeyringWriteFailed":
        return Effect.fail(new VaultUnavailable({ reason: "keys-unavailable" }))
      case "InvalidKeyContext":
        // The vault's rules are stricter than key-custody's; reaching this is a bug.
        return Effect.die(error)
    }
  }

/** Sealing reads no stored envelope: only unavailable keys can fail it; the rest are bugs. */
const sealError = (error: KeyError): Effect.Effect<never, VaultUnavailable> =>
  error._tag === "KmsUnavailable" || error._tag === "KeyringWriteFailed" || error._tag === "KeyNotFound"
    ? Effect.fail(new VaultUnavailable({ reason: "keys-unavailable" }))
    : Effect.die(error)

const checkValue = (
  value: Redacted.Redacted<string>
): Effect.Effect<void, InvalidSecretValue | SecretTooLarge> =>
  Effect.suspend((): Effect.Effect<void, InvalidSecretValue | SecretTooLarge> => {
    const size = Buffer.byteLength(Redacted.value(value), "utf8")
    if (size === 0) return Effect.fail(new InvalidSecretValue({ reason: "empty" }))
    if (size > Secret.MAX_VALUE_BYTES) {
      return Effect.fail(new SecretTooLarge({ limitBytes: Secret.MAX_VALUE_BYTES, sizeBytes: size }))
    }
    return Effect.void
  })

/** Insert the next version, re-reading the latest and retrying when another writer won. */
const appendVersion = <E, R>(
  backend: Backend,
  wallet: string,
  name: string,
  build: (version: number, latest: Option.Option<Row>) => Effect.Effect<Option.Option<EnvelopeRecord>, E, R>
) =>
  Effect.gen(function* () {
    const latest = yield* backend.latest(wallet, name)
    const version = Option.match(latest, { onNone: () => 1, onSome: (row) => row.version + 1 })
    const envelope = yield* build(version, latest)
    const createdAt = yield* Clock.currentTimeMillis
    yield* backend.insert({ wallet, name, version, createdAt, envelope })
    return { version, createdAt }
  }).pipe(
    Effect.retry({ while: (error) => error instanceof Conflict, times: MAX_WRITE_ATTEMPTS - 1 }),
    Effect.catchIf(
      (error): error is Conflict => error instanceof Conflict,
      () => Effect.fail(new VaultUnavailable({ reason: "contention" }))
    ),
    Effect.catchIf(
      (error): error is BackendError => error instanceof BackendError,
      (error) => Effect.fail(unavailable(error))
    )
  )

export const makeStore = (backend: Backend, keys: KeyProvider.KeyProviderShape): SecretStoreShape => {
  const withKeys = Effect.provideService(KeyProvider.KeyProvider, keys)

  const open = (row: Row) => {
    const address = { wallet: row.wallet, name: row.name, version: row.version }
    return Either.match(Envelope.fromAttributes(Option.getOrElse(row.envelope, () => ({}))), {
      onLeft: (error) => keyError(address)(error),
      onRight: (envelope) =>
        Envelope.openText(address, envelope).pipe(Effect.catchAll(keyError(address)), withKeys)
    })
  }

  const notFound = (wallet: string, name: string, version?: number) =>
    new SecretNotFound({ wallet, name, ...(version === undefined ? {} : { version }) })

  return {
    put: (wallet, name, value) =>
      Effect.gen(function* () {
        yield* Secret.checkWallet(wallet)
        yield* Secret.checkName(name)
        yield* checkValue(value)
        const written = yield* appendVersion(backend, wallet, name, (version) =>
          Envelope.seal({ wallet, name, version }, value).pipe(
            Effect.map(
              (envelope): Option.Option<EnvelopeRecord> => Option.some(Envelope.toAttributes(envelope))
            ),
            Effect.catchAll(sealError),
            withKeys
          )
        )
        return new Secret.SecretVersion({
          name,
          version: written.version,
          createdAt: new Date(written.createdAt)
        })
      }).pipe(Effect.withSpan("SecretStore.put", { captureStackTrace: false, attributes: { wallet, name } })),

    get: (wallet, name, version) =>
      Effect.gen(function* () {
        yield* Secret.checkWallet(wallet)
        yield* Secret.checkName(name)
        if (version !== undefined) yield* Secret.validateVersion(version)
        const row = yield* version === undefined
          ? backend.latest(wallet, name)
          : backend.at(wallet, name, version)
        if (Option.isNone(row) || Option.isNone(row.value.envelope))
          return yield* notFound(wallet, name, version)
        if (version !== undefined && (yield* backend.deletedAfter(wallet, name, version))) {
          return yield* notFound(wallet, name, version)
        }
        const value = yield* open(row.value)
        return { name, version: row.value.version, createdAt: new Date(row.value.createdAt), value }
      }).pipe(
        Effect.catchIf(
          (error): error is BackendError => error instanceof BackendError,
          (error) => Effect.fail(unavailable(error))
        ),
        Effect.withSpan("SecretStore.get", { captureStackTrace: false, attributes: { wallet, name } })
      ),

    list: (wallet) =>
      Effect.gen(function* () {
        yield* Secret.checkWallet(wallet)
        const rows = yield* backend.scan(wallet).pipe(Effect.mapError(unavailable))
        const byName = new Map<string, Array<(typeof rows)[number]>>()
        for (const row of rows) {
          const versions = byName.get(row.name) ?? []
          versions.push(row)
          byName.set(row.name, versions)
        }
        const summaries: Array<Secret.SecretSummary> = []
        for (const [name, versions] of byName) {
          versions.sort((a, b) => a.version - b.version)
          const latest = versions[versions.length - 1]!
          if (latest.tombstone) continue
          // A secret deleted and written again starts over after its last tombstone.
          const lastTombstone = versions.findLastIndex((row) => row.tombstone)
          const live = versions.slice(lastTombstone + 1)
          summaries.push(
            new Secret.SecretSummary({
              name,
              version: latest.version,
              versions: live.length,
              createdAt: new Date(live[0]!.createdAt),
              updatedAt: new Date(latest.createdAt)
            })
          )
        }
        return summaries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      }).pipe(Effect.withSpan("SecretStore.list", { captureStackTrace: false, attributes: { wallet } })),

    delete: (wallet, name) =>
      Effect.gen(function* () {
        yield* Secret.checkWallet(wallet)
        yield* Secret.checkName(name)
        const written = yield* appendVersion(backend, wallet, name, (_version, latest) =>
          Option.isNone(latest) || Option.isNone(latest.value.envelope)
            ? Effect.fail(notFound(wallet, name))
            : Effect.succeed(Option.none())
        )
        return new Secret.SecretVersion({
          name,
          version: written.version,
          createdAt: new Date(written.createdAt)
        })
      }).pipe(
        Effect.withSpan("SecretStore.delete", { captureStackTrace: false, attributes: { wallet, name } })
      )
  }
}
