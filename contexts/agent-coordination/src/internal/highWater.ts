/**
 * Rollback detection for MACed items (ADR 0044). A MAC proves an item was written by the
 * broker, not that it is the newest one: someone with write access to the table can put back
 * an earlier, validly MACed copy (a revoked session as it was while active, a revoked token, a
 * link code before it was redeemed). The repositories remember the highest version this
 * process wrote or read of each item and refuse an older one as tampered.
 *
 * In-process only: a restarted broker, or another broker instance that never saw the newer
 * version, cannot tell (docs/threat-model.md).
 */

export interface HighWater {
  /** Records that `version` of `pk` was written or read; kept until `until` (epoch ms). */
  readonly note: (pk: string, version: number, until: number) => void
  /** Whether `version` of `pk` is older than one this process has seen. */
  readonly isRollback: (pk: string, version: number) => boolean
  readonly size: () => number
}

interface Mark {
  version: number
  until: number
}

/**
 * `maxEntries` bounds the memory: past it, marks whose `until` has passed are dropped first,
 * then the oldest. An item whose `until` has passed is harmless to roll back (a session past
 * its expiry is expired on every read, whatever its stored status).
 */
export const make = (options: { readonly maxEntries: number; readonly now?: () => number }): HighWater => {
  const now = options.now ?? Date.now
  const marks = new Map<string, Mark>()
  const prune = () => {
    const t = now()
    for (const [pk, mark] of marks) if (mark.until < t) marks.delete(pk)
    for (const pk of marks.keys()) {
      if (marks.size <= options.maxEntries) break
      marks.delete(pk)
    }
  }
  return {
    note: (pk, version, until) => {
      const mark = marks.get(pk)
      if (mark !== undefined) {
        if (version > mark.version) mark.version = version
        if (until > mark.until) mark.until = until
        return
      }
      marks.set(pk, { version, until })
      if (marks.size > options.maxEntries) prune()
    },
    isRollback: (pk, version) => {
      const mark = marks.get(pk)
      return mark !== undefined && version < mark.version
    },
    size: () => marks.size
  }
}
