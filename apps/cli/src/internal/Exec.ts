/**
 * `aap exec` and `aap aws credential-process`: request a session (waiting for approval when the
 * tier needs it), fetch the credential, and — for exec — run the child with the credential in
 * its environment, masked in its output, revoked when it ends. Loaded lazily.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Tls from "node:tls"
import type { DeliveryApi } from "@aap/agent-coordination"
import { FORWARD_PROXY_CA_PATH } from "@aap/broker"
import { Data, DateTime, Duration, Effect, Option, Redacted } from "effect"
import { type BrokerError, type Client, call, explain } from "./Client.js"
import { Masker } from "./Masker.js"
import type { Connection } from "./Settings.js"
import { untilDecided } from "./Wait.js"

/** Failures of `aap exec` itself (not the child's): exit 125, or 126/127 for the command (ADR 0060). */
export class ExecError extends Data.TaggedError("ExecError")<{
  readonly message: string
  readonly code: number
}> {}

export interface Acquired {
  readonly sessionId: string
  readonly delivered: DeliveryApi.DeliveredCredential
  /** The capability is also usable as a standard forward proxy (`proxy.connect` in the catalog). */
  readonly forward: boolean
}

const revoke = (client: Client, id: string, reason: string) =>
  client.sessions
    .revoke({ path: { id }, payload: { reason } })
    .pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)

/**
 * Request, wait, deliver. A session that ends up denied or expired is an error; a delivery
 * failure revokes the session it opened.
 */
export const acquire = (
  connection: Connection,
  capability: string,
  ttlSeconds: Option.Option<number>,
  publicKey: (backing: string) => Effect.Effect<Option.Option<string>, ExecError>,
  options: {
    /**
     * Only a capability served through the broker's egress proxy (`aap exec --proxy`): any
     * other is refused before a session is requested, and a delivery that is not a proxy
     * credential is revoked and never reaches the child.
     */
    readonly proxyOnly?: boolean
  } = {}
): Effect.Effect<Acquired, BrokerError | ExecError> =>
  Effect.gen(function* () {
    const toExec = (e: BrokerError) => new ExecError({ message: e.message, code: 125 })
    return yield* call(connection, (client) =>
      Effect.gen(function* () {
        const view = yield* client.catalog.list()
        const entry = view.capabilities.find((c) => c.id === capability)
        if (options.proxyOnly === true && entry !== undefined && !entry.proxied) {
          return yield* new ExecError({
            message: `${capability} is not served through the egress proxy: its ${entry.backing} credential itself would reach CMD (run without --proxy to accept that)`,
            code: 125
          })
        }
        const backing = entry?.backing ?? "unknown"
        const key = yield* publicKey(backing)
        const created = yield* client.sessions.request({
          payload: { capability, ...(Option.isSome(ttlSeconds) ? { ttlSeconds: ttlSeconds.value } : {}) }
        })
        const session = yield* untilDecided(client, created)
        if (session.status !== "active") {
          const why = session.ended?.reason === undefined ? "" : `: ${session.ended.reason}`
          const by = session.ended === undefined ? "" : ` by ${session.ended.by.type} ${session.ended.by.id}`
          return yield* new ExecError({
            message: `session ${session.id} was ${session.status}${by}${why}`,
            code: 125
          })
        }
        const delivered = yield* client.delivery
          .deliver({ path: { id: session.id }, payload: Option.isSome(key) ? { publicKey: key.value } : {} })
          .pipe(Effect.tapError(() => revoke(client, session.id, "delivery failed")))
        if (options.proxyOnly === true && delivered.credential._tag !== "proxy") {
          yield* revoke(client, session.id, "aap exec --proxy: not a proxy credential")
          return yield* new ExecError({
            message: `${capability} delivered a ${delivered.credential._tag} credential, not a proxy one; the session was revoked and CMD not started`,
            code: 125
          })
        }
        return { sessionId: session.id, delivered, forward: entry?.forward === true }
      })
    ).pipe(Effect.mapError((e) => (e._tag === "BrokerError" ? toExec(e) : e)))
  })

/** Where the broker serves its operator CA certificate when TLS interception is on (ADR 0082). */
export const CA_PATH = FORWARD_PROXY_CA_PATH

/** What `aap exec --proxy` adds for a forward-mode capability (ADR 0081). */
export interface ForwardSetup {
  readonly env: Record<string, string>
  /** Values to mask in the child's output (the proxy URL carries the token). */
  readonly secrets: ReadonlyArray<string>
  /** The temporary directory holding the CA files, removed when CMD ends. */
  readonly dir: string | undefined
}

const mergeNoProxy = (existing: string | undefined, host: string): string => {
  const entries = (existing ?? "")
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
  return entries.includes(host) ? entries.join(",") : [...entries, host].join(",")
}

/** Best effort: a directory CMD made unremovable must not stop the revocation that follows. */
const removeDir = (dir: string) => {
  try {
    Fs.rmSync(dir, { recursive: true, force: true })
  } catch {
    // left behind in the temporary directory
  }
}

const readIfFile = (file: string | undefined): string | undefined => {
  if (file === undefined || file === "") return undefined
  try {
    return Fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
}

/**
 * `HTTPS_PROXY` / `https_proxy` = `<broker scheme>://<session>:<token>@<broker host:port>`,
 * `NO_PROXY` / `no_proxy` += the broker's host, and — when the broker intercepts TLS (it serves
 * its CA at `CA_PATH`) — the CA bundle variables: `NODE_EXTRA_CA_CERTS` (the operator CA; node
 * adds it to its roots) and `SSL_CERT_FILE`, `CURL_CA_BUNDLE`, `REQUESTS_CA_BUNDLE` (these
 * replace the roots, so the file is the current roots plus the operator CA). `HTTP_PROXY` is
 * not set: the broker refuses absolute-form (plain http) requests.
 */
export const forwardSetup = (
  sessionId: string,
  credential: { readonly baseUrl: string; readonly token: Redacted.Redacted<string> },
  parent: NodeJS.ProcessEnv
): Effect.Effect<ForwardSetup, ExecError> =>
  Effect.gen(function* () {
    const broker = yield* Effect.try({
      try: () => new URL(credential.baseUrl),
      catch: () =>
        new ExecError({
          message: `the broker delivered an unusable proxy URL: ${credential.baseUrl}`,
          code: 125
        })
    })
    const token = Redacted.value(credential.token)
    const proxyUrl = `${broker.protocol}//${encodeURIComponent(sessionId)}:${encodeURIComponent(token)}@${broker.host}`
    // What clients send from that URL: `curl -v` prints `Proxy-Authorization: Basic <this>`.
    const secrets = [proxyUrl, Buffer.from(`${sessionId}:${token}`).toString("base64")]
    const noProxy = mergeNoProxy(parent.NO_PROXY ?? parent.no_proxy, broker.hostname.replace(/^\[|\]$/g, ""))
    const env: Record<string, string> = {
      HTTPS_PROXY: proxyUrl,
      https_proxy: proxyUrl,
      NO_PROXY: noProxy,
      no_proxy: noProxy
    }
    const ca = yield* Effect.tryPromise({
      try: async () => {
        const res = await fetch(`${broker.origin}${CA_PATH}`, { signal: AbortSignal.timeout(10_000) })
        const text = await res.text()
        if (res.status === 404) return undefined
        if (res.status !== 200 || !text.includes("-----BEGIN CERTIFICATE-----")) {
          throw new Error(`GET ${CA_PATH} answered ${res.status}`)
        }
        return text
      },
      catch: (e) =>
        new ExecError({
          message: `cannot read the broker's interception CA (${broker.origin}${CA_PATH}): ${e instanceof Error ? e.message : String(e)}`,
          code: 125
        })
    })
    if (ca === undefined) return { env, secrets, dir: undefined }
    const dir = yield* Effect.try({
      try: () => {
        const d = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-ca-"))
        try {
          Fs.chmodSync(d, 0o700)
          const caPem = `${ca.trim()}\n`
          const extra = readIfFile(parent.NODE_EXTRA_CA_CERTS)
          Fs.writeFileSync(
            Path.join(d, "extra-ca.pem"),
            extra === undefined ? caPem : `${extra.trim()}\n${caPem}`,
            { mode: 0o644 }
          )
          const roots = readIfFile(parent.SSL_CERT_FILE) ?? Tls.rootCertificates.join("\n")
          Fs.writeFileSync(Path.join(d, "bundle.pem"), `${roots.trim()}\n${caPem}`, { mode: 0o644 })
          return d
        } catch (e) {
          removeDir(d)
          throw e
        }
      },
      catch: (e) =>
        new ExecError({ message: `cannot write the CA bundle: ${(e as Error).message}`, code: 125 })
    })
    const bundle = Path.join(dir, "bundle.pem")
    return {
      env: {
        ...env,
        NODE_EXTRA_CA_CERTS: Path.join(dir, "extra-ca.pem"),
        SSL_CERT_FILE: bundle,
        CURL_CA_BUNDLE: bundle,
        REQUESTS_CA_BUNDLE: bundle
      },
      secrets,
      dir
    }
  })

/** Environment names whose values are not secret (left readable in the child's output). */
const PUBLIC_ENV = new Set(["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "SSH_AUTH_SOCK"])

/** Every secret value of a delivery: the credential's secret fields and the secret env values. */
export const secretValues = (d: DeliveryApi.DeliveredCredential): Array<string> => {
  const out: Array<string> = []
  const c = d.credential
  if (c._tag === "bearer-token") out.push(Redacted.value(c.token))
  if (c._tag === "aws-sts") out.push(Redacted.value(c.secretAccessKey), Redacted.value(c.sessionToken))
  for (const [name, value] of Object.entries(d.env)) {
    if (!PUBLIC_ENV.has(name)) out.push(Redacted.value(value))
  }
  return out.filter((v) => v.length >= 4)
}

const sh = (cmd: string, args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) =>
  ChildProcess.spawnSync(cmd, args, { encoding: "utf8", env: env ?? process.env })

/** A private ssh-agent holding the session's key and certificate (`ssh-certificate` backing). */
interface SshSetup {
  readonly dir: string
  readonly publicKey: string
  agentPid?: number
  sock?: string
}

const sshKeypair = (): Effect.Effect<SshSetup, ExecError> =>
  Effect.try({
    try: () => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aap-ssh-"))
      Fs.chmodSync(dir, 0o700)
      const key = Path.join(dir, "id_ed25519")
      const r = sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "aap-exec", "-f", key])
      if (r.status !== 0) throw new Error(r.error?.message ?? r.stderr.trim())
      return { dir, publicKey: Fs.readFileSync(`${key}.pub`, "utf8").trim() }
    },
    catch: (e) =>
      new ExecError({ message: `cannot create an SSH key (ssh-keygen): ${(e as Error).message}`, code: 125 })
  })

const sshAgent = (
  setup: SshSetup,
  certificate: string,
  lifetimeSeconds: number
): Effect.Effect<string, ExecError> =>
  Effect.try({
    try: () => {
      const key = Path.join(setup.dir, "id_ed25519")
      Fs.writeFileSync(`${key}-cert.pub`, `${certificate.trim()}\n`, { mode: 0o600 })
      const sock = Path.join(setup.dir, "agent.sock")
      const started = sh("ssh-agent", ["-s", "-a", sock])
      if (started.status !== 0) throw new Error(started.error?.message ?? started.stderr.trim())
      const pid = /SSH_AGENT_PID=(\d+)/.exec(started.stdout)?.[1]
      if (pid !== undefined) setup.agentPid = Number(pid)
      setup.sock = sock
      const added = sh("ssh-add", ["-q", "-t", String(Math.max(1, lifetimeSeconds)), key], {
        ...process.env,
        SSH_AUTH_SOCK: sock
      })
      if (added.status !== 0) throw new Error(added.error?.message ?? added.stderr.trim())
      return sock
    },
    catch: (e) =>
      new ExecError({ message: `cannot start a private ssh-agent: ${(e as Error).message}`, code: 125 })
  })

const sshCleanup = (setup: SshSetup | undefined) => {
  if (setup === undefined) return
  if (setup.agentPid !== undefined) {
    try {
      process.kill(setup.agentPid, "SIGTERM")
    } catch {
      // already gone
    }
  }
  Fs.rmSync(setup.dir, { recursive: true, force: true })
}

const FORWARDED: ReadonlyArray<NodeJS.Signals> = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR2",
  "SIGWINCH"
]

interface ChildResult {
  readonly code: number
  readonly signal?: NodeJS.Signals
  readonly spawnError?: string
}

/** Start the child without a shell, pipe its output through the maskers, forward signals. */
const runChild = (
  argv: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv,
  secrets: ReadonlyArray<string>
): Promise<ChildResult> =>
  new Promise((resolve) => {
    const [cmd, ...args] = argv
    const child = ChildProcess.spawn(cmd ?? "", args, {
      env,
      stdio: ["inherit", "pipe", "pipe"],
      shell: false
    })
    const out = new Masker(secrets)
    const err = new Masker(secrets)
    let open = 2
    let exit: ChildResult | undefined
    const forward = (signal: NodeJS.Signals) => () => {
      try {
        child.kill(signal)
      } catch {
        // the child is gone
      }
    }
    const handlers = FORWARDED.map((s) => [s, forward(s)] as const)
    for (const [s, h] of handlers) process.on(s, h)
    const done = () => {
      if (exit === undefined || open > 0) return
      for (const [s, h] of handlers) process.removeListener(s, h)
      resolve(exit)
    }
    const pipe = (from: NodeJS.ReadableStream, to: NodeJS.WriteStream, masker: Masker) => {
      from.on("data", (chunk: Buffer) => {
        const safe = masker.push(chunk)
        if (safe.length > 0) to.write(safe)
      })
      from.on("end", () => {
        const rest = masker.flush()
        const finish = () => {
          open--
          done()
        }
        if (rest.length > 0) to.write(rest, finish)
        else to.write("", finish)
      })
    }
    child.on("error", (e: NodeJS.ErrnoException) => {
      for (const [s, h] of handlers) process.removeListener(s, h)
      resolve({
        code: e.code === "ENOENT" ? 127 : e.code === "EACCES" ? 126 : 125,
        spawnError:
          e.code === "ENOENT"
            ? `command not found: ${cmd}`
            : e.code === "EACCES"
              ? `permission denied: ${cmd}`
              : e.message
      })
    })
    if (child.stdout === null || child.stderr === null) return
    pipe(child.stdout, process.stdout, out)
    pipe(child.stderr, process.stderr, err)
    child.on("exit", (code, signal) => {
      exit =
        signal !== null ? { code: 128 + (Os.constants.signals[signal] ?? 0), signal } : { code: code ?? 1 }
      done()
    })
  })

/**
 * The whole of `aap exec`: returns the exit code (the child's, or 125/126/127). Uninterruptible
 * once the session exists, so Ctrl-C reaches the child and the revocation still happens.
 */
export const exec = (
  connection: Connection,
  capability: string,
  ttlSeconds: Option.Option<number>,
  argv: ReadonlyArray<string>,
  options: { readonly proxyOnly?: boolean } = {}
): Effect.Effect<number, ExecError> =>
  Effect.gen(function* () {
    let ssh: SshSetup | undefined
    const acquired = yield* acquire(
      connection,
      capability,
      ttlSeconds,
      (backing) =>
        backing === "ssh-certificate"
          ? Effect.map(sshKeypair(), (setup) => {
              ssh = setup
              return Option.some(setup.publicKey)
            })
          : Effect.succeed(Option.none()),
      options
    ).pipe(
      Effect.mapError((e) => (e._tag === "ExecError" ? e : new ExecError({ message: e.message, code: 125 }))),
      Effect.tapError(() => Effect.sync(() => sshCleanup(ssh)))
    )
    const { delivered, sessionId, forward } = acquired
    return yield* Effect.uninterruptible(
      Effect.gen(function* () {
        const client = yield* call(connection, Effect.succeed).pipe(Effect.orDie)
        const env: NodeJS.ProcessEnv = { ...process.env }
        for (const [name, value] of Object.entries(delivered.env)) env[name] = Redacted.value(value)
        const c = delivered.credential
        if (c._tag === "ssh-certificate" && ssh !== undefined) {
          const left = Math.floor(DateTime.distance(DateTime.unsafeNow(), delivered.expiresAt) / 1000)
          const setup = ssh
          const sock = yield* sshAgent(setup, c.certificate, left).pipe(
            Effect.tapError(() => revoke(client, sessionId, "ssh-agent setup failed")),
            Effect.tapError(() => Effect.sync(() => sshCleanup(setup)))
          )
          env.SSH_AUTH_SOCK = sock
        }
        if (c._tag === "wrapped-command" && c.command.length > 0) {
          const allowed = c.command.every((part, i) => argv[i] === part)
          if (!allowed) {
            yield* revoke(client, sessionId, "command not allowed by the capability")
            sshCleanup(ssh)
            return yield* new ExecError({
              message: `this capability only runs: ${c.command.join(" ")} ...`,
              code: 125
            })
          }
        }
        let forwardDir: string | undefined
        const extraSecrets: Array<string> = []
        if (options.proxyOnly === true && forward && c._tag === "proxy") {
          const setup = yield* forwardSetup(sessionId, c, process.env).pipe(
            Effect.tapError(() => revoke(client, sessionId, "aap exec --proxy: forward-proxy setup failed"))
          )
          Object.assign(env, setup.env)
          extraSecrets.push(...setup.secrets)
          forwardDir = setup.dir
        }
        const result = yield* Effect.promise(() =>
          runChild(argv, env, [...secretValues(delivered), ...extraSecrets])
        )
        // Set now: after a forwarded SIGINT/SIGTERM the runtime interrupts the command once this
        // region ends, and the exit code must still be the child's.
        process.exitCode = result.code
        yield* revoke(
          client,
          sessionId,
          result.signal !== undefined
            ? `aap exec: child ended by ${result.signal}`
            : `aap exec: child exited ${result.code}`
        )
        sshCleanup(ssh)
        if (forwardDir !== undefined) removeDir(forwardDir)
        if (result.spawnError !== undefined) {
          return yield* new ExecError({ message: result.spawnError, code: result.code })
        }
        return result.code
      })
    )
  })

/** `credential_process` output (AWS CLI / SDK contract, Version 1). */
export const credentialProcess = (
  connection: Connection,
  capability: string,
  ttlSeconds: Option.Option<number>
) =>
  Effect.gen(function* () {
    const { delivered, sessionId } = yield* acquire(connection, capability, ttlSeconds, () =>
      Effect.succeed(Option.none())
    )
    const c = delivered.credential
    if (c._tag !== "aws-sts") {
      yield* call(connection, (client) => revoke(client, sessionId, "not an aws-sts capability")).pipe(
        Effect.ignore
      )
      return yield* new ExecError({
        message: `${capability} is a ${c._tag} capability; credential-process needs an aws-sts one`,
        code: 1
      })
    }
    return {
      Version: 1,
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: Redacted.value(c.secretAccessKey),
      SessionToken: Redacted.value(c.sessionToken),
      Expiration: DateTime.formatIso(c.expiration)
    }
  })

export { explain }
