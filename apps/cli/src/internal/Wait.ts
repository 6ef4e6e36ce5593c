/**
 * Poll a pending session until it is decided (`--wait`, `aap exec`). On a terminal, a progress
 * line on stderr; otherwise quiet. Loaded lazily with the client.
 */
import type { Session as SessionModule } from "@aap/agent-coordination"
import { DateTime, Duration, Effect } from "effect"
import type { Client } from "./Client.js"

type Session = SessionModule.Session

export const pollInterval = (): Duration.Duration => {
  const raw = Number(process.env.AAP_POLL_INTERVAL_MS)
  return Duration.millis(Number.isFinite(raw) && raw >= 10 ? raw : 1000)
}

/** Wait until the session leaves `pending_approval`; returns the decided session. */
export const untilDecided = (client: Client, session: Session) =>
  waitLoop(client, session).pipe(
    Effect.onInterrupt(() =>
      Effect.sync(() => {
        process.stderr.write(
          `\naap: ${session.id} stays pending until an operator decides or its approval window closes; if it is approved later, revoke it: aap session revoke ${session.id}\n`
        )
      })
    )
  )

const waitLoop = (client: Client, session: Session) =>
  Effect.gen(function* () {
    if (session.status !== "pending_approval") return session
    const tty = process.stderr.isTTY === true
    const started = Date.now()
    const progress = (s: Session) =>
      Effect.sync(() => {
        if (!tty) return
        const waited = Math.round((Date.now() - started) / 1000)
        const left = Math.max(0, Math.round(DateTime.distance(DateTime.unsafeNow(), s.expiresAt) / 1000))
        process.stderr.write(
          `\r\x1b[2Kwaiting for approval of ${s.id} (${s.capability}, ${s.tier}): ${s.approvals.length}/${s.requiredApprovals} approvals, ${waited}s elapsed, window closes in ${left}s`
        )
      })
    yield* progress(session)
    let current = session
    try {
      while (current.status === "pending_approval") {
        yield* Effect.sleep(pollInterval())
        current = yield* client.sessions.get({ path: { id: session.id } })
        yield* progress(current)
      }
    } finally {
      if (tty) process.stderr.write("\r\x1b[2K")
    }
    const decided = current
    return decided
  })
