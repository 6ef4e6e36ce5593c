import { Effect, Option } from "effect"
import { type Backend, Conflict, type Row } from "./backend.js"

/** Versions in process memory; a build of the layer is a new, empty store. */
export const makeMemoryBackend = (): Backend => {
  const wallets = new Map<string, Map<string, Map<number, Row>>>()
  const versionsOf = (wallet: string, name: string) => wallets.get(wallet)?.get(name)
  return {
    latest: (wallet, name) =>
      Effect.sync(() => {
        const versions = versionsOf(wallet, name)
        if (versions === undefined || versions.size === 0) return Option.none()
        return Option.fromNullable(versions.get(Math.max(...versions.keys())))
      }),
    at: (wallet, name, version) =>
      Effect.sync(() => Option.fromNullable(versionsOf(wallet, name)?.get(version))),
    deletedAfter: (wallet, name, version) =>
      Effect.sync(() =>
        [...(versionsOf(wallet, name)?.values() ?? [])].some(
          (row) => row.version > version && Option.isNone(row.envelope)
        )
      ),
    insert: (row) =>
      Effect.suspend(() => {
        let names = wallets.get(row.wallet)
        if (names === undefined) {
          names = new Map()
          wallets.set(row.wallet, names)
        }
        let versions = names.get(row.name)
        if (versions === undefined) {
          versions = new Map()
          names.set(row.name, versions)
        }
        if (versions.has(row.version)) return Effect.fail(new Conflict())
        versions.set(row.version, row)
        return Effect.void
      }),
    scan: (wallet) =>
      Effect.sync(() =>
        [...(wallets.get(wallet)?.values() ?? [])].flatMap((versions) =>
          [...versions.values()].map(({ envelope, ...meta }) => ({
            ...meta,
            tombstone: Option.isNone(envelope)
          }))
        )
      )
  }
}
