import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Delivery } from "../../src/Delivery.js"
import * as SshCertificate from "../../src/delivery/SshCertificate.js"
import * as H from "./support/harness.js"
import * as OpenSsh from "./support/openssh.js"

const user = Os.userInfo().username
const now = () => Math.floor(Date.now() / 1000)

const issue = (
  ca: SshCertificate.CertificateAuthority,
  publicKey: string,
  validAfter: number,
  validBefore: number
) =>
  SshCertificate.sign(ca, {
    publicKey,
    keyId: "aap:session:01JTEST:agent:codex",
    principals: ["deploy", user],
    validAfter,
    validBefore,
    serial: 42n,
    extensions: SshCertificate.defaultExtensions
  })

describe("SshCertificate with real OpenSSH", () => {
  it.scoped("ssh-keygen -L reads the certificate with our principals, key id and validity", () =>
    Effect.gen(function* () {
      const dir = yield* OpenSsh.tempDir
      const ca = yield* SshCertificate.loadAuthority(SshCertificate.generateAuthorityKey())
      const agent = yield* OpenSsh.keygen(dir, "agent")
      const cert = yield* issue(ca, agent.publicKey, 1_900_000_000, 1_900_000_600)
      const file = Path.join(dir, "agent-cert.pub")
      yield* Effect.promise(() => Fs.writeFile(file, `${cert.line}\n`))
      const listed = yield* OpenSsh.listCertificate(file)
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.include(listed.stdout, "Type: ssh-ed25519-cert-v01@openssh.com user certificate")
      assert.include(listed.stdout, 'Key ID: "aap:session:01JTEST:agent:codex"')
      assert.include(listed.stdout, "Serial: 42")
      assert.match(listed.stdout, /Principals:\s*\n\s*deploy\n/)
      assert.include(listed.stdout, "permit-pty")
      assert.notInclude(listed.stdout, "permit-port-forwarding")
      // 1_900_000_000 = 2030-03-17T17:46:40Z; ssh-keygen prints local time, TZ is UTC here or not.
      assert.match(listed.stdout, /Valid: from 2030-03-1\dT\d\d:\d\d:40 to 2030-03-1\dT\d\d:\d\d:40/)
    })
  )

  it.scoped("an unencrypted OpenSSH CA key from ssh-keygen works as well as PKCS#8", () =>
    Effect.gen(function* () {
      const dir = yield* OpenSsh.tempDir
      const caFiles = yield* OpenSsh.keygen(dir, "ca")
      const ca = yield* SshCertificate.loadAuthority(Redacted.make(caFiles.privateKey))
      assert.strictEqual(ca.publicKeyLine.split(" ")[1], caFiles.publicKey.split(" ")[1])
      const agent = yield* OpenSsh.keygen(dir, "agent")
      const cert = yield* issue(ca, agent.publicKey, now() - 60, now() + 600)
      const file = Path.join(dir, "agent-cert.pub")
      yield* Effect.promise(() => Fs.writeFile(file, `${cert.line}\n`))
      const listed = yield* OpenSsh.listCertificate(file)
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.include(listed.stdout, `Signing CA: ED25519 `)
    })
  )

  it.scoped("sshd trusting the CA accepts the certificate during its validity and refuses it after", () =>
    Effect.gen(function* () {
      const dir = yield* OpenSsh.tempDir
      const ca = yield* SshCertificate.loadAuthority(SshCertificate.generateAuthorityKey())
      const server = yield* OpenSsh.sshd(dir, ca.publicKeyLine)
      const agent = yield* OpenSsh.keygen(dir, "agent")

      const live = Path.join(dir, "live-cert.pub")
      const valid = yield* issue(ca, agent.publicKey, now() - 60, now() + 600)
      yield* Effect.promise(() => Fs.writeFile(live, `${valid.line}\n`))
      const accepted = yield* OpenSsh.sshLogin(server.port, user, agent.file, live)
      assert.strictEqual(accepted.code, 0, `${accepted.stderr}\n${server.log.join("")}`)
      assert.include(accepted.stdout, "aap-login-ok")

      const dead = Path.join(dir, "dead-cert.pub")
      const expired = yield* issue(ca, agent.publicKey, now() - 600, now() - 5)
      yield* Effect.promise(() => Fs.writeFile(dead, `${expired.line}\n`))
      const refused = yield* OpenSsh.sshLogin(server.port, user, agent.file, dead)
      assert.notStrictEqual(refused.code, 0)
      assert.notInclude(refused.stdout, "aap-login-ok")
      assert.match(server.log.join(""), /expired|invalid/i)
    })
  )

  it.scoped("sshd refuses a certificate signed by another CA", () =>
    Effect.gen(function* () {
      const dir = yield* OpenSsh.tempDir
      const trusted = yield* SshCertificate.loadAuthority(SshCertificate.generateAuthorityKey())
      const rogue = yield* SshCertificate.loadAuthority(SshCertificate.generateAuthorityKey())
      const server = yield* OpenSsh.sshd(dir, trusted.publicKeyLine)
      const agent = yield* OpenSsh.keygen(dir, "agent")
      const file = Path.join(dir, "rogue-cert.pub")
      const cert = yield* issue(rogue, agent.publicKey, now() - 60, now() + 600)
      yield* Effect.promise(() => Fs.writeFile(file, `${cert.line}\n`))
      const refused = yield* OpenSsh.sshLogin(server.port, user, agent.file, file)
      assert.notStrictEqual(refused.code, 0)
    })
  )

  it.effect("refuses RSA keys, garbage and truncated blobs with InvalidPublicKey", () =>
    Effect.gen(function* () {
      for (const bad of [
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        "garbage",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"
      ]) {
        const e = yield* Effect.flip(SshCertificate.parsePublicKey(bad))
        assert.strictEqual(e._tag, "InvalidPublicKey")
      }
    })
  )

  it.effect("refuses non-Ed25519 CA material without echoing it", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(SshCertificate.loadAuthority(Redacted.make("CANARY-not-a-key")))
      assert.strictEqual(e._tag, "InvalidCaKey")
      assert.notInclude(JSON.stringify(e), "CANARY")
    })
  )
})

describe("ssh-certificate delivery end to end (real clock, real sshd)", () => {
  it.scopedLive(
    "a delivered certificate logs in while the session lasts and is refused once it has ended",
    () =>
      Effect.gen(function* () {
        const dir = yield* OpenSsh.tempDir
        const { env, layer } = H.makeEnv({})
        yield* Effect.addFinalizer(() => Effect.sync(() => env.sts.restore()))
        const ca = yield* SshCertificate.loadAuthority(H.caKey)
        const server = yield* OpenSsh.sshd(dir, ca.publicKeyLine, ["deploy", "ops", user])
        const agent = yield* OpenSsh.keygen(dir, "agent")
        const file = `${agent.file}-cert.pub`
        const session = yield* env.session(H.codex, "ssh-platform-host", 4)
        const out = yield* Effect.flatMap(Delivery, (d) =>
          d.deliver(H.codex, session.id, { publicKey: agent.publicKey })
        ).pipe(Effect.provide(layer))
        if (out.credential._tag !== "ssh-certificate") return assert.fail("expected a certificate")
        yield* Effect.promise(() =>
          Fs.writeFile(
            file,
            `${out.credential._tag === "ssh-certificate" ? out.credential.certificate : ""}\n`
          )
        )
        const during = yield* OpenSsh.sshLogin(server.port, user, agent.file, file)
        assert.strictEqual(during.code, 0, `${during.stderr}\n${server.log.join("")}`)
        yield* Effect.sleep("5 seconds")
        const after = yield* OpenSsh.sshLogin(server.port, user, agent.file, file)
        assert.notStrictEqual(after.code, 0)
        assert.notInclude(after.stdout, "aap-login-ok")
      })
  )
})
