import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Effect, Layer, Stream } from "effect"
import { AuditKeys, AuditLog, AuditReader, JsonlSink } from "../src/index.js"
import { input } from "./AuditSinkConformance.js"
import { tempDir } from "./harness.js"

const mode = (path: string) => Effect.promise(async () => (await Fs.stat(path)).mode & 0o777)

const appendEvents = (dir: string, n: number, options: { maxSegmentBytes?: number } = {}) =>
  Effect.gen(function* () {
    const log = yield* AuditLog.AuditLog
    for (let i = 1; i <= n; i++) yield* log.append(input(i))
    return yield* log.stream
  }).pipe(
    Effect.provide(
      AuditLog.layerWith({ instanceId: "jsonl" }).pipe(Layer.provide(JsonlSink.layer({ dir, ...options })))
    )
  )

describe("JsonlSink", () => {
  it.scoped("creates 0700 directories and 0600 files", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const dir = Path.join(root, "audit")
      const stream = yield* appendEvents(dir, 3)
      assert.strictEqual(yield* mode(dir), 0o700)
      assert.strictEqual(yield* mode(Path.join(dir, stream)), 0o700)
      const files = yield* Effect.promise(() => Fs.readdir(Path.join(dir, stream)))
      assert.includeMembers(files, ["0000000000000001.jsonl", "checkpoints.jsonl"])
      assert.notInclude(files, "writer.lock", "the lock is released on close")
      for (const file of files) assert.strictEqual(yield* mode(Path.join(dir, stream, file)), 0o600, file)
    }).pipe(Effect.provide(AuditKeys.layerEphemeral))
  )

  it.scoped("starts a new segment when the current one is full, and reads across segments", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const stream = yield* appendEvents(dir, 40, { maxSegmentBytes: 2048 })
      const segments = (yield* Effect.promise(() => Fs.readdir(Path.join(dir, stream)))).filter(
        (f) => f.endsWith(".jsonl") && f !== "checkpoints.jsonl"
      )
      assert.isAbove(segments.length, 5)
      const { sink, closeAll } = yield* JsonlSink.make({ dir })
      const reader = AuditReader.make(sink, yield* AuditKeys.AuditKeys)
      const report = yield* reader.verify()
      assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
      assert.strictEqual(report.streams[0]!.lastSeq, 40)
      assert.deepStrictEqual(
        (yield* reader.tail(stream, { after: 33 })).map((e) => e.seq),
        [34, 35, 36, 37, 38, 39, 40]
      )
      yield* closeAll
    }).pipe(Effect.provide(AuditKeys.layerEphemeral))
  )

  it.scoped("scan reads a segment larger than its read chunk line by line, from any position", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const stream = "big-stream"
      yield* Effect.promise(() => Fs.mkdir(Path.join(dir, stream), { recursive: true, mode: 0o700 }))
      // 3.3 MiB in two segments: lines of varying length with multi-byte characters, so lines
      // straddle the 1 MiB read chunks; and a torn last line, which is never a record
      const lineOf = (n: number) =>
        JSON.stringify({ n, pad: "é€😀".repeat(n % 97), tail: "x".repeat((n * 7919) % 300) })
      const first = Array.from({ length: 6000 }, (_, i) => lineOf(i + 1))
      const second = Array.from({ length: 6000 }, (_, i) => lineOf(i + 6001))
      const write = (name: string, lines: Array<string>, torn = "") =>
        Effect.promise(() =>
          Fs.writeFile(Path.join(dir, stream, name), `${lines.join("\n")}\n${torn}`, { mode: 0o600 })
        )
      yield* write("0000000000000001.jsonl", first)
      yield* write("0000000000006001.jsonl", second, '{"torn":')
      const size = (yield* Effect.promise(() => Fs.stat(Path.join(dir, stream, "0000000000000001.jsonl"))))
        .size
      assert.isAbove(size, 1.5 * 1024 * 1024, "the first segment spans several read chunks")
      const { sink, closeAll } = yield* JsonlSink.make({ dir })
      const scan = (from: number) => Effect.map(Stream.runCollect(sink.scan(stream, from)), Chunk.toArray)
      const all = yield* scan(1)
      assert.strictEqual(all.length, 12_000)
      all.forEach((r, i) => {
        if (r.position !== i + 1 || r.line !== lineOf(i + 1))
          assert.fail(`line ${i + 1} read back as ${r.position}: ${r.line.slice(0, 80)}`)
      })
      const middle = yield* scan(4321)
      assert.strictEqual(middle[0]!.position, 4321)
      assert.strictEqual(middle[0]!.line, lineOf(4321))
      assert.strictEqual(middle.length, 12_000 - 4320)
      const late = yield* scan(9000)
      assert.deepStrictEqual([late[0]!.position, late.at(-1)!.position], [9000, 12_000])
      // a consumer that takes a few lines gets exactly those
      const few = Chunk.toArray(yield* Stream.runCollect(Stream.take(sink.scan(stream, 5990), 20)))
      assert.deepStrictEqual(
        few.map((r) => r.position),
        Array.from({ length: 20 }, (_, i) => 5990 + i)
      )
      yield* closeAll
    })
  )

  it.scoped("recovers a torn last line of a dead writer's stream on open", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const stream = yield* appendEvents(dir, 5)
      const segment = Path.join(dir, stream, "0000000000000001.jsonl")
      const intact = yield* Effect.promise(() => Fs.readFile(segment, "utf8"))
      const torn = '{"hash":"0123456789abcdef","action":"credential.iss'
      yield* Effect.promise(() => Fs.appendFile(segment, torn))
      // the writer "crashed": a lock naming a process that no longer exists
      yield* Effect.promise(() =>
        Fs.writeFile(
          Path.join(dir, stream, "writer.lock"),
          JSON.stringify({ pid: 2 ** 22 + 17, host: Os.hostname() })
        )
      )
      const { sink, recovered, closeAll } = yield* JsonlSink.make({ dir })
      assert.deepStrictEqual(recovered, [
        { stream, segment: "0000000000000001.jsonl", tornBytes: torn.length }
      ])
      assert.strictEqual(yield* Effect.promise(() => Fs.readFile(segment, "utf8")), intact)
      assert.strictEqual(yield* Effect.promise(() => Fs.readFile(`${segment}.torn`, "utf8")), torn)
      const report = yield* AuditReader.make(sink, yield* AuditKeys.AuditKeys).verify()
      assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
      assert.strictEqual(report.streams[0]!.lastSeq, 5)
      yield* closeAll
    }).pipe(Effect.provide(AuditKeys.layerEphemeral))
  )

  it.scoped("leaves a live writer's stream alone, and readers ignore its unfinished line", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const stream = yield* appendEvents(dir, 2)
      const segment = Path.join(dir, stream, "0000000000000001.jsonl")
      yield* Effect.promise(() => Fs.appendFile(segment, '{"hash":"partial'))
      yield* Effect.promise(() =>
        Fs.writeFile(
          Path.join(dir, stream, "writer.lock"),
          JSON.stringify({ pid: process.ppid, host: Os.hostname() })
        )
      )
      const { sink, recovered, closeAll } = yield* JsonlSink.make({ dir })
      assert.deepStrictEqual(recovered, [])
      assert.isTrue((yield* Effect.promise(() => Fs.readFile(segment, "utf8"))).endsWith('{"hash":"partial'))
      const report = yield* AuditReader.make(sink, yield* AuditKeys.AuditKeys).verify()
      assert.isTrue(report.ok, JSON.stringify(report.firstBreak))
      yield* closeAll
    }).pipe(Effect.provide(AuditKeys.layerEphemeral))
  )

  it.scoped("refuses stream ids that could escape the directory", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { sink } = yield* JsonlSink.make({ dir })
      for (const bad of ["../x", "a/b", ".hidden", ""]) {
        const error = yield* Effect.flip(sink.open(bad))
        assert.strictEqual(error.message, "invalid stream id")
        yield* Effect.flip(sink.checkpoints(bad))
      }
    })
  )
})

describe("JsonlSink.layerConfig", () => {
  it.scoped("writes under $AAP_HOME/audit", () =>
    Effect.gen(function* () {
      const home = yield* tempDir
      const stream = yield* Effect.gen(function* () {
        const log = yield* AuditLog.AuditLog
        yield* log.append(input(1))
        return yield* log.stream
      }).pipe(
        Effect.provide(
          AuditLog.layerWith({ instanceId: "cfg" }).pipe(
            Layer.provide(JsonlSink.layerConfig),
            Layer.provide(AuditKeys.layerEphemeral),
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["AAP_HOME", home]]))))
          )
        )
      )
      const files = yield* Effect.promise(() => Fs.readdir(Path.join(home, "audit", stream)))
      assert.include(files, "0000000000000001.jsonl")
    })
  )
})
