/**
 * The JSONL file sink: the embedded default (DESIGN §8). Layout under `dir`
 * (`$AAP_HOME/audit` by default):
 *
 * ```
 * <dir>/<stream>/0000000000000001.jsonl   segment: one record per line, named by its first seq
 * <dir>/<stream>/0000000000041234.jsonl   next segment, started when the previous one was full
 * <dir>/<stream>/checkpoints.jsonl        signed checkpoints, one per line
 * <dir>/<stream>/writer.lock              {pid, host} while a writer owns the stream
 * ```
 *
 * Directories are 0700, files 0600. A batch is one `write` and one `fdatasync`. A crash can
 * leave a torn last line (a batch written in part): readers ignore bytes after the last
 * newline, and opening the sink moves such bytes of streams whose writer is gone to
 * `<segment>.torn` and truncates the segment.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { Chunk, Config, type ConfigError, Effect, Layer, Stream } from "effect"
import { AuditSink, AuditSinkError, type AuditSinkShape, type StoredLine } from "./AuditSink.js"
import { padSeq } from "./internal/record.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Root directory of the audit files. */
  readonly dir: string
  /** Start a new segment once the current one would exceed this size (default 64 MiB). */
  readonly maxSegmentBytes?: number | undefined
}

/**
 * What opening the sink found and repaired.
 *
 * @since 0.1.0
 * @category models
 */
export interface Recovery {
  readonly stream: string
  readonly segment: string
  readonly tornBytes: number
}

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/
const SEGMENT = /^\d{16}\.jsonl$/
const LOCK = "writer.lock"
const CHECKPOINTS = "checkpoints.jsonl"

const sinkError = (operation: string) => (cause: unknown) =>
  new AuditSinkError({
    operation,
    message:
      typeof cause === "object" && cause !== null && "code" in cause
        ? String(cause.code)
        : "file system error"
  })

const attempt = <A>(operation: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: sinkError(operation) })

const checkId = (operation: string, stream: string) =>
  SAFE_ID.test(stream)
    ? Effect.void
    : Effect.fail(new AuditSinkError({ operation, message: "invalid stream id" }))

const fsyncDir = async (dir: string) => {
  const handle = await Fs.open(dir, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Bytes read from a segment at a time by `bytes` and `scan` (plus any partial line carried over). */
const READ_CHUNK = 1 << 20

/**
 * A segment's whole lines, read `READ_CHUNK` bytes at a time into two buffers used in turn:
 * while the consumer holds one chunk the next is read into the other (see `AuditSink.bytes`:
 * a chunk is valid until the next is pulled). Verifying a 64 MiB segment thus neither holds
 * it in memory nor allocates per chunk, and reading overlaps hashing. Bytes after the last
 * newline are a torn line, never a record: they are dropped.
 */
async function* segmentChunks(path: string, buffers: Array<Buffer>): AsyncGenerator<Uint8Array> {
  const handle = await Fs.open(path, "r")
  // fill buffers[k] after `carried` bytes already at its start
  const fill = async (k: number, carried: number) => {
    if (buffers[k]!.length < carried + READ_CHUNK) {
      // a line longer than a chunk: grow, keeping the carried part
      const grown = Buffer.allocUnsafe(carried + READ_CHUNK)
      buffers[k]!.copy(grown, 0, 0, carried)
      buffers[k] = grown
    }
    const { bytesRead } = await handle.read(buffers[k]!, carried, READ_CHUNK, null)
    return bytesRead
  }
  let k = 0
  let carried = 0
  let pending = fill(k, 0)
  try {
    for (;;) {
      const bytesRead = await pending
      if (bytesRead === 0) return
      const buffer = buffers[k]!
      const filled = carried + bytesRead
      const end = buffer.lastIndexOf(0x0a, filled - 1) + 1
      // the partial last line goes to the front of the other buffer, which is read next
      carried = filled - end
      const other = 1 - k
      if (buffers[other]!.length < carried + READ_CHUNK)
        buffers[other] = Buffer.allocUnsafe(carried + READ_CHUNK)
      buffer.copy(buffers[other]!, 0, end, filled)
      pending = fill(other, carried)
      if (end > 0) yield new Uint8Array(buffer.buffer, buffer.byteOffset, end)
      k = other
    }
  } finally {
    await pending.catch(() => 0) // a read still in flight when the consumer stops
    await handle.close()
  }
}

const writeAll = async (handle: Fs.FileHandle, buffer: Buffer) => {
  let offset = 0
  while (offset < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset)
    offset += bytesWritten
  }
}

const exists = async (path: string) => {
  try {
    await Fs.access(path)
    return true
  } catch {
    return false
  }
}

const segmentsOf = async (streamDir: string): Promise<Array<string>> => {
  try {
    return (await Fs.readdir(streamDir)).filter((name) => SEGMENT.test(name)).sort()
  } catch (error) {
    if (typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT") return []
    throw error
  }
}

/** Is the writer named in this lock file still running on this host? */
const lockIsLive = async (lockPath: string): Promise<boolean> => {
  let raw: string
  try {
    raw = await Fs.readFile(lockPath, "utf8")
  } catch {
    return false
  }
  try {
    const lock = JSON.parse(raw) as { pid?: unknown; host?: unknown }
    if (lock.host !== Os.hostname()) return true // another host's writer: never touch it
    if (typeof lock.pid !== "number") return false
    if (lock.pid === process.pid) return false
    try {
      process.kill(lock.pid, 0)
      return true
    } catch (error) {
      return typeof error === "object" && error !== null && "code" in error && error.code === "EPERM"
    }
  } catch {
    return false
  }
}

/** Cut a torn last line off the last segment of every stream whose writer is gone. */
const recover = async (dir: string): Promise<Array<Recovery>> => {
  const recovered: Array<Recovery> = []
  const entries = await Fs.readdir(dir, { withFileTypes: true })
  for (const entry of entries) {
    if (!entry.isDirectory() || !SAFE_ID.test(entry.name)) continue
    const streamDir = Path.join(dir, entry.name)
    const lockPath = Path.join(streamDir, LOCK)
    if (await lockIsLive(lockPath)) continue
    const segments = await segmentsOf(streamDir)
    const last = segments.at(-1)
    if (last !== undefined) {
      const path = Path.join(streamDir, last)
      const content = await Fs.readFile(path)
      const end = content.lastIndexOf(0x0a) + 1
      if (end < content.length) {
        const torn = content.subarray(end)
        await Fs.appendFile(`${path}.torn`, torn, { mode: 0o600 })
        const handle = await Fs.open(path, "r+")
        try {
          await handle.truncate(end)
          await handle.sync()
        } finally {
          await handle.close()
        }
        recovered.push({ stream: entry.name, segment: last, tornBytes: torn.length })
      }
    }
    await Fs.rm(lockPath, { force: true })
  }
  return recovered
}

interface OpenStream {
  handle: Fs.FileHandle
  size: number
}

/**
 * Open the sink: create `dir` (0700) if missing and recover torn last lines. Returns the sink
 * and what was recovered.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  {
    readonly sink: AuditSinkShape
    readonly recovered: ReadonlyArray<Recovery>
    /** Close every stream still open (the layer does this on release). */
    readonly closeAll: Effect.Effect<void>
  },
  AuditSinkError
> =>
  Effect.gen(function* () {
    const dir = Path.resolve(options.dir)
    const maxSegmentBytes = options.maxSegmentBytes ?? 64 * 1024 * 1024
    yield* attempt("open", () => Fs.mkdir(dir, { recursive: true, mode: 0o700 }))
    const recovered = yield* attempt("recover", () => recover(dir))
    const open = new Map<string, OpenStream>()

    const openSegment = async (streamDir: string, firstSeq: number): Promise<Fs.FileHandle> => {
      const handle = await Fs.open(Path.join(streamDir, `${padSeq(firstSeq)}.jsonl`), "a", 0o600)
      await handle.sync()
      await fsyncDir(streamDir)
      return handle
    }

    const sink: AuditSinkShape = {
      kind: "jsonl",
      maxBatch: 100_000,
      open: (stream) =>
        checkId("open", stream).pipe(
          Effect.zipRight(
            attempt("open", async () => {
              const streamDir = Path.join(dir, stream)
              await Fs.mkdir(streamDir, { mode: 0o700 }) // fails if the id was ever used
              await Fs.writeFile(
                Path.join(streamDir, LOCK),
                JSON.stringify({ pid: process.pid, host: Os.hostname() }),
                { mode: 0o600 }
              )
              const handle = await openSegment(streamDir, 1)
              await fsyncDir(dir)
              open.set(stream, { handle, size: 0 })
            })
          )
        ),
      write: (stream, records) =>
        Effect.suspend(() => {
          const state = open.get(stream)
          if (state === undefined) {
            return Effect.fail(new AuditSinkError({ operation: "write", message: "stream is not open" }))
          }
          if (records.length === 0) return Effect.void
          let text = ""
          for (const record of records) text += record.line + "\n"
          const buffer = Buffer.from(text, "utf8")
          return attempt("write", async () => {
            if (state.size > 0 && state.size + buffer.length > maxSegmentBytes) {
              await state.handle.close()
              state.handle = await openSegment(Path.join(dir, stream), records[0]!.seq)
              state.size = 0
            }
            await writeAll(state.handle, buffer)
            await state.handle.datasync()
            state.size += buffer.length
          })
        }),
      close: (stream) =>
        Effect.promise(async () => {
          const state = open.get(stream)
          open.delete(stream)
          if (state !== undefined) await state.handle.close().catch(() => undefined)
          await Fs.rm(Path.join(dir, stream, LOCK), { force: true }).catch(() => undefined)
        }),
      streams: attempt("streams", async () => {
        const entries = await Fs.readdir(dir, { withFileTypes: true })
        return entries
          .filter((e) => e.isDirectory() && SAFE_ID.test(e.name))
          .map((e) => e.name)
          .sort()
      }),
      scan: (stream, from) =>
        Stream.unwrap(
          checkId("scan", stream).pipe(
            Effect.zipRight(attempt("scan", () => segmentsOf(Path.join(dir, stream)))),
            Effect.map((segments) => {
              // start at the last segment whose first seq is <= from
              let start = 0
              for (let i = 0; i < segments.length; i++) {
                if (Number(segments[i]!.slice(0, 16)) <= from) start = i
              }
              // Each segment is read in chunks of whole lines (`segmentChunks`), so a scan holds
              // about two chunks, not a 64 MiB segment and its split; lines before `from` are
              // counted, not decoded, and a consumer that stops early stops the reading.
              return Stream.fromIterable(segments.slice(start)).pipe(
                Stream.flatMap((name) => {
                  let position = Number(name.slice(0, 16))
                  const buffers = [Buffer.alloc(0), Buffer.alloc(0)]
                  return Stream.fromAsyncIterable(
                    segmentChunks(Path.join(dir, stream, name), buffers),
                    sinkError("scan")
                  ).pipe(
                    Stream.map((chunk) => {
                      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
                      const out: Array<StoredLine> = []
                      // a chunk ends with a newline: every line in it is whole
                      for (let i = 0; i < bytes.length; ) {
                        const newline = bytes.indexOf(0x0a, i)
                        if (position >= from) out.push({ position, line: bytes.toString("utf8", i, newline) })
                        position++
                        i = newline + 1
                      }
                      return Chunk.unsafeFromArray(out)
                    }),
                    Stream.flattenChunks
                  )
                })
              )
            })
          )
        ),
      bytes: (stream) =>
        Stream.unwrap(
          checkId("bytes", stream).pipe(
            Effect.zipRight(attempt("bytes", () => segmentsOf(Path.join(dir, stream)))),
            Effect.map((segments) => {
              const buffers = [Buffer.alloc(0), Buffer.alloc(0)]
              return Stream.fromIterable(segments).pipe(
                Stream.flatMap((name) =>
                  Stream.fromAsyncIterable(
                    segmentChunks(Path.join(dir, stream, name), buffers),
                    sinkError("bytes")
                  )
                )
              )
            })
          )
        ),
      writeCheckpoint: (stream, _seq, line) =>
        checkId("writeCheckpoint", stream).pipe(
          Effect.zipRight(
            attempt("writeCheckpoint", async () => {
              const handle = await Fs.open(Path.join(dir, stream, CHECKPOINTS), "a", 0o600)
              try {
                await writeAll(handle, Buffer.from(line + "\n", "utf8"))
                await handle.datasync()
              } finally {
                await handle.close()
              }
            })
          )
        ),
      checkpoints: (stream) =>
        checkId("checkpoints", stream).pipe(
          Effect.zipRight(
            attempt("checkpoints", async () => {
              const path = Path.join(dir, stream, CHECKPOINTS)
              if (!(await exists(path))) return []
              const lines = (await Fs.readFile(path, "utf8")).split("\n")
              lines.pop()
              return lines
            })
          )
        )
    }
    const closeAll = Effect.promise(async () => {
      for (const [stream, state] of open) {
        open.delete(stream)
        await state.handle.close().catch(() => undefined)
        await Fs.rm(Path.join(dir, stream, LOCK), { force: true }).catch(() => undefined)
      }
    })
    return { sink, recovered, closeAll }
  })

/**
 * The JSONL sink as a layer. Logs what it recovered. On release it closes every open file.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AuditSink, AuditSinkError> =>
  Layer.scoped(
    AuditSink,
    Effect.gen(function* () {
      const { sink, recovered } = yield* Effect.acquireRelease(make(options), (made) => made.closeAll)
      for (const r of recovered) {
        yield* Effect.logWarning(
          `audit: recovered torn last line of ${r.stream}/${r.segment} (${r.tornBytes} bytes kept in .torn)`
        )
      }
      return sink
    })
  )

/**
 * The JSONL sink under `$AAP_HOME/audit` (`AAP_HOME` defaults to `./.aap`, DESIGN §13).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<AuditSink, AuditSinkError | ConfigError.ConfigError> =
  Layer.unwrapEffect(
    Effect.map(Config.string("AAP_HOME").pipe(Config.withDefault("./.aap")), (home) =>
      layer({ dir: Path.join(home, "audit") })
    )
  )
