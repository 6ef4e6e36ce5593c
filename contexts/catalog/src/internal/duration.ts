/**
 * Durations in the catalog file: `90s`, `15m`, `1h`, `1h30m`, `2h15m30s`.
 * Units appear at most once, in the order h, m, s; the value is a whole number of seconds.
 */
const DURATION = /^(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,9})s)?$/

/** Largest accepted duration: far above any tier ceiling, small enough to stay exact. */
export const MAX_SECONDS = 366 * 24 * 3600

export const parse = (text: string): number | undefined => {
  if (text.length === 0) return undefined
  const match = DURATION.exec(text)
  if (match === null) return undefined
  const [, h, m, s] = match
  const seconds = Number(h ?? 0) * 3600 + Number(m ?? 0) * 60 + Number(s ?? 0)
  if (seconds <= 0 || seconds > MAX_SECONDS) return undefined
  return seconds
}

/** The canonical (shortest) form: `90` → `1m30s`, `3600` → `1h`. */
export const format = (seconds: number): string => {
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  const parts = (h > 0 ? `${h}h` : "") + (m > 0 ? `${m}m` : "") + (s > 0 ? `${s}s` : "")
  return parts === "" ? "0s" : parts
}
