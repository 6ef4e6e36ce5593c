/** Helpers that drive the real OpenSSH binaries for the certificate tests. */
import { execFile, spawn } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, type Scope } from "effect"

const run = (cmd: string, args: ReadonlyArray<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    execFile(cmd, [...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resume(Effect.succeed({ code, stdout, stderr }))
    })
  })

export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "aap-ssh-"))),
  (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
)

export const keygen = (dir: string, name: string) =>
  Effect.gen(function* () {
    const file = Path.join(dir, name)
    const r = yield* run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file])
    if (r.code !== 0) return yield* Effect.die(new Error(`ssh-keygen failed: ${r.stderr}`))
    const publicKey = yield* Effect.promise(() => Fs.readFile(`${file}.pub`, "utf8"))
    const privateKey = yield* Effect.promise(() => Fs.readFile(file, "utf8"))
    return { file, publicKey: publicKey.trim(), privateKey }
  })

export const listCertificate = (certFile: string) => run("/usr/bin/ssh-keygen", ["-L", "-f", certFile])

const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const srv = Net.createServer()
      srv.once("error", reject)
      srv.listen(0, "127.0.0.1", () => {
        const addr = srv.address()
        const port = typeof addr === "object" && addr !== null ? addr.port : 0
        srv.close(() => resolve(port))
      })
    })
)

/** An sshd on loopback trusting `caPublicKeyLine` for user certificates; stopped with the scope. */
export const sshd = (dir: string, caPublicKeyLine: string, principals: ReadonlyArray<string> = ["deploy"]) =>
  Effect.gen(function* () {
    const host = yield* keygen(dir, "host_ed25519")
    const ca = Path.join(dir, "trusted_ca.pub")
    yield* Effect.promise(() => Fs.writeFile(ca, `${caPublicKeyLine}\n`))
    const port = yield* freePort
    const cfg = Path.join(dir, "sshd_config")
    yield* Effect.promise(() =>
      Fs.writeFile(
        cfg,
        [
          `ListenAddress 127.0.0.1`,
          `Port ${port}`,
          `HostKey ${host.file}`,
          `PidFile ${Path.join(dir, "sshd.pid")}`,
          `TrustedUserCAKeys ${ca}`,
          // The certificate's principals are matched against this file (one name per line).
          `AuthorizedPrincipalsFile ${Path.join(dir, "principals")}`,
          `AuthorizedKeysFile none`,
          `PubkeyAuthentication yes`,
          `PasswordAuthentication no`,
          `KbdInteractiveAuthentication no`,
          `PermitRootLogin yes`,
          `StrictModes no`,
          `UsePAM no`,
          `LogLevel VERBOSE`,
          ""
        ].join("\n")
      )
    )
    yield* Effect.promise(() => Fs.writeFile(Path.join(dir, "principals"), `${principals.join("\n")}\n`))
    yield* Effect.promise(() => Fs.mkdir("/run/sshd", { recursive: true }))
    const log: Array<string> = []
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", cfg], {
          stdio: ["ignore", "ignore", "pipe"]
        })
        child.stderr.on("data", (d: Buffer) => log.push(d.toString()))
        return child
      }),
      (child) => Effect.sync(() => child.kill("SIGTERM"))
    )
    // Wait until it accepts connections.
    yield* Effect.promise(async () => {
      for (let i = 0; i < 100; i++) {
        const ok = await new Promise<boolean>((resolve) => {
          const s = Net.connect(port, "127.0.0.1")
          s.once("connect", () => {
            s.destroy()
            resolve(true)
          })
          s.once("error", () => resolve(false))
        })
        if (ok) return
        await new Promise((r) => setTimeout(r, 50))
      }
      throw new Error(`sshd did not start: ${log.join("")}`)
    })
    return { port, log }
  })

/** `ssh -i key -o CertificateFile=cert user@127.0.0.1 true`; exit code 0 means accepted. */
export const sshLogin = (port: number, user: string, keyFile: string, certFile: string) =>
  run("/usr/bin/ssh", [
    "-F",
    "/dev/null",
    "-p",
    String(port),
    "-i",
    keyFile,
    "-o",
    `CertificateFile=${certFile}`,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "PreferredAuthentications=publickey",
    "-o",
    "ConnectTimeout=10",
    `${user}@127.0.0.1`,
    "echo aap-login-ok"
  ])
