/**
 * The keyring file: permission checks, parsing without echoing content, atomic writes and a
 * cross-process lock for mutations.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Either, ParseResult, Schema } from "effect"
import {
  KeyringInsecure,
  type KeyringLoadError,
  KeyringUnreadable,
  KeyringWriteFailed
} from "../KeyCustodyError.js"
import { freshDoc, KeyringCore, type KeyringDoc, type Storage } from "./keyring.js"

export const keyringPathFromHome = (home: string): string => path.join(home, "keys", "keyring.json")

const errorCode = (e: unknown): string =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : "unknown error"

const Positive = Schema.Int.pipe(Schema.positive())
const B64 = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9+/]*={0,2}$/))
const DocSchema = Schema.Struct({
  format: Schema.Literal("aap-keyring"),
  version: Schema.Literal(1),
  kind: Schema.Literal("local"),
  revision: Positive,
  primary: Positive,
  umks: Schema.Array(Schema.Struct({ version: Positive, key: B64, createdAt: Schema.String })).pipe(
    Schema.minItems(1)
  ),
  wallets: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      current: Schema.Int,
      keks: Schema.Array(
        Schema.Struct({
          version: Positive,
          umk: Positive,
          nonce: B64,
          wrapped: B64,
          createdAt: Schema.String
        })
      ),
      shreddedThrough: Schema.optionalWith(Schema.Int, { exact: true }),
      shreddedAt: Schema.optionalWith(Schema.String, { exact: true })
    })
  }),
  system: Schema.Struct({ umk: Positive, nonce: B64, wrapped: B64, createdAt: Schema.String })
})

/**
 * Parse a keyring document. Reasons name the offending field's path only: neither JSON.parse
 * nor Schema messages are used, since both can quote the (secret) content.
 */
export const parseDoc = (text: string, file: string): Either.Either<KeyringDoc, KeyringUnreadable> => {
  if (text.trim().length === 0)
    return Either.left(new KeyringUnreadable({ path: file, reason: "the file is empty" }))
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return Either.left(
      new KeyringUnreadable({
        path: file,
        reason: "the file is not valid JSON (truncated or corrupted); restore it from a backup"
      })
    )
  }
  const decoded = Schema.decodeUnknownEither(DocSchema)(json, { onExcessProperty: "ignore" })
  if (Either.isLeft(decoded)) {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
    const where = issues
      .slice(0, 3)
      .map((i) => (i.path.length === 0 ? "(root)" : i.path.map(String).join(".")))
      .join(", ")
    return Either.left(
      new KeyringUnreadable({ path: file, reason: `the file is not an aap keyring (check field ${where})` })
    )
  }
  return Either.right(decoded.right)
}

/** Refuse group/world access on the file and group/world write on its directory. */
export const checkPermissions = (file: string): Effect.Effect<void, KeyringLoadError> =>
  Effect.gen(function* () {
    const dir = path.dirname(file)
    const st = yield* Effect.tryPromise({
      try: () => fs.stat(file),
      catch: (e) => new KeyringUnreadable({ path: file, reason: `cannot stat (${errorCode(e)})` })
    })
    if (!st.isFile()) return yield* new KeyringUnreadable({ path: file, reason: "not a regular file" })
    if ((st.mode & 0o077) !== 0) {
      return yield* new KeyringInsecure({
        path: file,
        mode: `0${(st.mode & 0o777).toString(8)}`,
        fix: `chmod 600 ${file}`
      })
    }
    const dst = yield* Effect.tryPromise({
      try: () => fs.stat(dir),
      catch: (e) =>
        new KeyringUnreadable({ path: file, reason: `cannot stat its directory (${errorCode(e)})` })
    })
    if ((dst.mode & 0o022) !== 0) {
      return yield* new KeyringInsecure({
        path: dir,
        mode: `0${(dst.mode & 0o777).toString(8)}`,
        fix: `chmod 700 ${dir}`
      })
    }
  })

/** Read and parse, with the permission checks first. */
export const readDoc = <A>(
  file: string,
  parse: (text: string, file: string) => Either.Either<A, KeyringUnreadable>
): Effect.Effect<A, KeyringLoadError> =>
  Effect.gen(function* () {
    yield* checkPermissions(file)
    const text = yield* Effect.tryPromise({
      try: () => fs.readFile(file, "utf8"),
      catch: (e) =>
        new KeyringUnreadable({
          path: file,
          reason: errorCode(e) === "EACCES" ? "permission denied" : `cannot read (${errorCode(e)})`
        })
    })
    return yield* parse(text, file)
  })

const writeFailed = (file: string, what: string) => (e: unknown) =>
  new KeyringWriteFailed({ path: file, reason: `${what} (${errorCode(e)})` })

/** Write `content` to a fresh 0600 temporary file beside `file`, fsync'd; returns its path. */
const writeTemp = (file: string, content: string): Effect.Effect<string, KeyringWriteFailed> =>
  Effect.tryPromise({
    try: async () => {
      const tmp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`
      const handle = await fs.open(tmp, "wx", 0o600)
      try {
        await handle.writeFile(content, "utf8")
        await handle.sync()
      } finally {
        await handle.close()
      }
      return tmp
    },
    catch: writeFailed(file, "cannot write a temporary file")
  })

const fsyncDir = (file: string): Effect.Effect<void, KeyringWriteFailed> =>
  Effect.tryPromise({
    try: async () => {
      const handle = await fs.open(path.dirname(file), "r")
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
    },
    catch: writeFailed(file, "cannot fsync the directory")
  })

const removeQuietly = (p: string) => Effect.promise(() => fs.rm(p, { force: true }))

/** Atomic replace: temp file, fsync, rename over `file`, fsync the directory. */
export const writeAtomic = (file: string, content: string): Effect.Effect<void, KeyringWriteFailed> =>
  Effect.flatMap(writeTemp(file, content), (tmp) =>
    Effect.tryPromise({
      try: () => fs.rename(tmp, file),
      catch: writeFailed(file, "cannot rename into place")
    }).pipe(
      Effect.tapError(() => removeQuietly(tmp)),
      Effect.zipRight(fsyncDir(file))
    )
  )

/**
 * Atomic create-if-absent: temp file, fsync, hard link to `file` (fails if it exists), fsync
 * the directory. Returns false when another process created `file` first.
 */
export const createExclusive = (file: string, content: string): Effect.Effect<boolean, KeyringWriteFailed> =>
  Effect.gen(function* () {
    yield* Effect.tryPromise({
      try: () => fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 }),
      catch: writeFailed(file, "cannot create the keyring directory")
    })
    const tmp = yield* writeTemp(file, content)
    const linked = yield* Effect.tryPromise({
      try: () => fs.link(tmp, file).then(() => true),
      catch: (e) => e
    }).pipe(
      Effect.catchAll((e) =>
        errorCode(e) === "EEXIST" ? Effect.succeed(false) : Effect.fail(writeFailed(file, "cannot create")(e))
      ),
      Effect.ensuring(removeQuietly(tmp))
    )
    yield* fsyncDir(file)
    return linked
  })

const exists = (file: string) =>
  Effect.promise(() =>
    fs.stat(file).then(
      () => true,
      () => false
    )
  )

/** A lock file beside the keyring (O_EXCL); a lock older than 30 s is considered stale. */
const withLockFile = <A, E>(
  file: string,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E | KeyringWriteFailed> => {
  const lockPath = `${file}.lock`
  // Polls with timers inside the promise (not Effect's Clock): waiting for another process is
  // real time, whatever clock the caller runs under.
  const acquire = Effect.tryPromise({
    try: async () => {
      const deadline = Date.now() + 5_000
      for (;;) {
        try {
          const handle = await fs.open(lockPath, "wx", 0o600)
          await handle.writeFile(`${process.pid}\n`)
          await handle.close()
          return
        } catch (e) {
          if (errorCode(e) !== "EEXIST") throw e
          const st = await fs.stat(lockPath).catch(() => undefined)
          if (st !== undefined && Date.now() - st.mtimeMs > 30_000) {
            await fs.rm(lockPath, { force: true })
            continue
          }
          if (Date.now() > deadline) throw e
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      }
    },
    catch: writeFailed(file, "cannot take the keyring lock")
  })
  return Effect.acquireUseRelease(
    acquire,
    () => effect,
    () => removeQuietly(lockPath)
  )
}

export const fileStorage = (file: string): Storage => ({
  exclusive: (effect) => withLockFile(file, effect),
  reload: (revision) =>
    readDoc(file, parseDoc).pipe(
      Effect.mapError(
        (e) => new KeyringWriteFailed({ path: file, reason: `cannot re-read the keyring: ${e.message}` })
      ),
      Effect.map((doc) => (doc.revision === revision ? undefined : doc))
    ),
  write: (doc) => writeAtomic(file, `${JSON.stringify(doc, null, 2)}\n`)
})

/** Load the keyring at `file`, creating it (0600, directory 0700) when absent. */
export const loadLocalKeyring = (file: string): Effect.Effect<KeyringCore, KeyringLoadError> =>
  Effect.gen(function* () {
    if (!(yield* exists(file))) {
      yield* createExclusive(file, `${JSON.stringify(freshDoc(), null, 2)}\n`)
    }
    const doc = yield* readDoc(file, parseDoc)
    return yield* KeyringCore.load(doc, fileStorage(file), "local-keyring", file)
  })
