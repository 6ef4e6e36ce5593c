/**
 * Test helpers: run the built binary (synchronously or as a live child), and a real broker
 * started as `aap serve` in a temporary AAP_HOME on an ephemeral port.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

export const root = fileURLToPath(new URL("../../../", import.meta.url))
export const bin = fileURLToPath(new URL("../bin/aap.mjs", import.meta.url))

export interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** A clean environment: no AAP_* from the caller, colours off, HOME and XDG in `home`. */
export const baseEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("AAP_") && k !== "XDG_CONFIG_HOME") env[k] = v
  }
  return { ...env, NO_COLOR: "1", AAP_POLL_INTERVAL_MS: "100", ...extra }
}

export const aap = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  options: { readonly input?: string; readonly cwd?: string } = {}
): Result => {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? root,
    encoding: "utf8",
    env: baseEnv(env),
    ...(options.input === undefined ? {} : { input: options.input }),
    timeout: 60_000
  })
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

export interface Live {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly done: Promise<Result>
  /** Resolves when stdout or stderr contains `text`. */
  readonly waitFor: (text: string | RegExp, timeoutMs?: number) => Promise<void>
}

export const aapLive = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Live => {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: baseEnv(env),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  const waiters: Array<() => void> = []
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString("utf8")
    for (const w of waiters) w()
  })
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString("utf8")
    for (const w of waiters) w()
  })
  const done = new Promise<Result>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout: out, stderr: err }))
  )
  const waitFor = (text: string | RegExp, timeoutMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const seen = () => (typeof text === "string" ? (out + err).includes(text) : text.test(out + err))
      if (seen()) return resolve()
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${String(text)}; stdout: ${out}; stderr: ${err}`)),
        timeoutMs
      )
      waiters.push(() => {
        if (seen()) {
          clearTimeout(timer)
          resolve()
        }
      })
      void done.then(() => {
        if (!seen()) {
          clearTimeout(timer)
          reject(new Error(`exited before ${String(text)}; stdout: ${out}; stderr: ${err}`))
        }
      })
    })
  return { child, stdout: () => out, stderr: () => err, done, waitFor }
}

export const tempDir = (prefix: string) => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))

/**
 * A fake STS endpoint (`AWS_ENDPOINT_URL_STS`): answers `AssumeRoleWithWebIdentity` with
 * credentials that expire in 15 minutes and records each request body.
 */
export const fakeSts = async () => {
  const requests: Array<string> = []
  const server = Http.createServer((req, res) => {
    let body = ""
    req.on("data", (c: Buffer) => {
      body += c.toString("utf8")
    })
    req.on("end", () => {
      requests.push(body)
      const expiration = new Date(Date.now() + 15 * 60_000).toISOString()
      res.writeHead(200, { "content-type": "text/xml" })
      res.end(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIATESTACCESSKEY01</AccessKeyId>
      <SecretAccessKey>canary-secret-access-key-0123456789abcdef</SecretAccessKey>
      <SessionToken>canary-session-token-FwoGZXIvYXdzEXAMPLE</SessionToken>
      <Expiration>${expiration}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>codex</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/aap-memory/aap.codex</Arn>
      <AssumedRoleId>AROATEST:aap.codex</AssumedRoleId>
    </AssumedRoleUser>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r()))
  }
}

export interface RunningBroker {
  readonly url: string
  readonly home: string
  readonly operatorToken: string
  readonly live: Live
  readonly stop: () => Promise<Result>
}

/** `aap serve` on 127.0.0.1:0 in a fresh AAP_HOME; resolves once it listens. */
export const startBroker = async (env: Record<string, string> = {}): Promise<RunningBroker> => {
  const home = tempDir("aap-cli-home-")
  const live = aapLive(["serve"], {
    AAP_HOME: home,
    AAP_LISTEN: "127.0.0.1:0",
    AAP_LOG_LEVEL: "none",
    AAP_SESSION_REQUESTS_PER_MINUTE: "1000",
    ...env
  })
  await live.waitFor(/listening on (http:\/\/\S+)/, 60_000)
  const url = /listening on (http:\/\/\S+)/.exec(live.stderr())?.[1] ?? ""
  const operatorToken = Fs.readFileSync(Path.join(home, "operator.token"), "utf8").trim()
  return {
    url,
    home,
    operatorToken,
    live,
    stop: () => {
      live.child.kill("SIGTERM")
      return live.done
    }
  }
}
