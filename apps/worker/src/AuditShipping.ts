/**
 * Audit checkpoints and shipping (DESIGN §8, §12).
 *
 * Per stream, on every run:
 * 1. **Checkpoint.** The stream is verified (`AuditReader.verifyStream`); a broken stream is
 *    never signed (it is reported by `ChainVerification`). If its head moved past its last
 *    checkpoint and the writer has not sealed it, the worker signs `(stream, seq, hash)` with
 *    the audit checkpoint key (`AuditKeys.sign` over the canonical JSON of
 *    `{final, hash, seq, stream, ts}`, the format `AuditReader` checks) and stores it beside
 *    the stream (`AuditSink.writeCheckpoint`). A checkpoint of a stream another process still
 *    writes is sound: it vouches only for records that already exist.
 * 2. **Ship.** Records covered by the newest checkpoint (the "closed" part of the stream) are
 *    uploaded to the audit bucket as `<prefix><stream>/records/<from>-<to>.jsonl` (at most
 *    `maxRecordsPerObject` lines, the exact stored bytes), then every checkpoint as
 *    `<prefix><stream>/checkpoints/<seq>-<sha256 prefix>.json`. Each PutObject carries
 *    `ObjectLockMode` + `ObjectLockRetainUntilDate` (now + retention) and `ContentMD5` (S3
 *    requires an integrity header on Object Lock uploads).
 *
 * Restart safety: object keys are deterministic; a progress marker per stream says how far
 * shipping got, records objects past the marker are found by listing (ListObjectsV2 with
 * `StartAfter`), and every object is checked with HeadObject before it is put, so a run killed
 * between an upload and its marker neither skips, overlaps nor duplicates an object (no second
 * version of a locked object).
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { AuditKeys, AuditReader, AuditSink, CanonicalJson } from "@aap/audit"
import {
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig
} from "@aws-sdk/client-s3"
import { Chunk, Context, Data, DateTime, Effect, Layer, Option, Stream } from "effect"
import * as Progress from "./Progress.js"
import { WorkerMetrics } from "./WorkerMetrics.js"

export interface AuditBucketShape {
  readonly client: S3Client
  readonly bucket: string
  /** Key prefix, e.g. `audit/` (may be empty). */
  readonly prefix: string
  readonly lockMode: "COMPLIANCE" | "GOVERNANCE"
  readonly retentionDays: number
}

export class AuditBucket extends Context.Tag("@aap/worker/AuditBucket")<AuditBucket, AuditBucketShape>() {}

/**
 * The S3 client settings the worker uses everywhere: path-style addressing and checksums only
 * when required (so the same code works against S3-compatible stores and s3rver in tests).
 */
export const s3Config = (options: {
  readonly endpoint?: string | undefined
  readonly region?: string | undefined
  readonly credentials?: S3ClientConfig["credentials"]
}): S3ClientConfig => ({
  ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  region: options.region ?? "us-east-1",
  forcePathStyle: true,
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
  ...(options.credentials === undefined ? {} : { credentials: options.credentials })
})

export const layerBucket = (options: {
  readonly bucket: string
  readonly prefix?: string | undefined
  readonly lockMode?: "COMPLIANCE" | "GOVERNANCE" | undefined
  readonly retentionDays?: number | undefined
  readonly client: S3ClientConfig
}): Layer.Layer<AuditBucket> =>
  Layer.scoped(
    AuditBucket,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => new S3Client(options.client)),
        (c) => Effect.sync(() => c.destroy())
      ),
      (client) => ({
        client,
        bucket: options.bucket,
        prefix: options.prefix ?? "audit/",
        lockMode: options.lockMode ?? "COMPLIANCE",
        retentionDays: options.retentionDays ?? 365
      })
    )
  )

export class ShippingError extends Data.TaggedError("ShippingError")<{
  readonly operation: string
  readonly stream: string
  readonly message: string
}> {}

export interface Options {
  /** Most records in one shipped object. Default 10,000. */
  readonly maxRecordsPerObject?: number | undefined
}

export interface StreamResult {
  readonly stream: string
  readonly checkpointed: Option.Option<number>
  readonly shippedThrough: number
  readonly objects: number
  readonly skipped?: "broken" | undefined
}

const pad = (n: number) => String(n).padStart(16, "0")
const JOB = "audit-shipping"

const fail = (operation: string, stream: string) => (e: unknown) =>
  new ShippingError({
    operation,
    stream,
    message:
      typeof e === "object" && e !== null && "name" in e && typeof e.name === "string"
        ? e.name
        : "unknown error"
  })

/** Uploads one object unless it exists (HeadObject first). `true` when uploaded now. */
const upload = (stream: string, key: string, body: string, contentType: string) =>
  Effect.gen(function* () {
    const b = yield* AuditBucket
    const exists = yield* Effect.tryPromise({
      try: () => b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: key })),
      catch: (e) => e
    }).pipe(
      Effect.as(true),
      Effect.catchAll((e) =>
        typeof e === "object" &&
        e !== null &&
        "name" in e &&
        (e.name === "NotFound" || e.name === "NoSuchKey")
          ? Effect.succeed(false)
          : Effect.fail(fail("HeadObject", stream)(e))
      )
    )
    if (exists) return false
    const now = yield* DateTime.now
    const retainUntil = new Date(DateTime.toEpochMillis(now) + b.retentionDays * 86_400_000)
    yield* Effect.tryPromise({
      try: () =>
        b.client.send(
          new PutObjectCommand({
            Bucket: b.bucket,
            Key: key,
            Body: body,
            ContentType: contentType,
            ContentMD5: Crypto.createHash("md5").update(body).digest("base64"),
            ObjectLockMode: b.lockMode,
            ObjectLockRetainUntilDate: retainUntil
          })
        ),
      catch: fail("PutObject", stream)
    })
    return true
  })

const numberField = (v: Progress.Value | undefined, name: string): number => {
  const x = v?.[name]
  return typeof x === "number" ? x : 0
}

/** Sign a checkpoint of `stream` at its head if the head moved (see module doc). */
export const checkpointStream = (
  stream: string
): Effect.Effect<
  { readonly broken: boolean; readonly checkpointed: Option.Option<number> },
  ShippingError,
  AuditReader.AuditReader | AuditSink.AuditSink | AuditKeys.AuditKeys | WorkerMetrics
> =>
  Effect.gen(function* () {
    const reader = yield* AuditReader.AuditReader
    const sink = yield* AuditSink.AuditSink
    const keys = yield* AuditKeys.AuditKeys
    const { report, firstBreak } = yield* reader
      .verifyStream(stream)
      .pipe(Effect.mapError(fail("verifyStream", stream)))
    if (firstBreak !== undefined || !report.ok) return { broken: true, checkpointed: Option.none() }
    if (report.sealed || report.lastSeq === 0 || report.lastSeq <= (report.checkpointSeq ?? 0)) {
      return { broken: false, checkpointed: Option.none() }
    }
    const head = {
      final: false,
      hash: report.lastHash,
      seq: report.lastSeq,
      stream,
      ts: DateTime.formatIso(yield* DateTime.now)
    }
    const signed = yield* keys
      .sign(new TextEncoder().encode(CanonicalJson.stringifyUnsafe(head)))
      .pipe(Effect.mapError(fail("sign", stream)))
    const line = CanonicalJson.stringifyUnsafe({
      ...head,
      keyId: signed.keyId,
      signature: Buffer.from(signed.signature).toString("base64url")
    })
    yield* sink.writeCheckpoint(stream, head.seq, line).pipe(Effect.mapError(fail("writeCheckpoint", stream)))
    yield* Effect.flatMap(WorkerMetrics, (m) => m.inc("aap_worker_audit_checkpoints_total", { stream }))
    return { broken: false, checkpointed: Option.some(head.seq) }
  })

/** Upload the checkpointed records and the checkpoints of one stream. */
export const shipStream = (
  stream: string,
  options: Options = {}
): Effect.Effect<
  { readonly shippedThrough: number; readonly objects: number },
  ShippingError | Progress.ProgressError,
  AuditSink.AuditSink | AuditBucket | Progress.Progress | WorkerMetrics
> =>
  Effect.gen(function* () {
    const sink = yield* AuditSink.AuditSink
    const bucket = yield* AuditBucket
    const metrics = yield* WorkerMetrics
    const progress = yield* Progress.Progress
    const per = Math.max(1, options.maxRecordsPerObject ?? 10_000)
    const marker = yield* progress.get(JOB, `stream#${stream}`)
    let shipped = numberField(Option.getOrUndefined(marker)?.value, "records")
    let shippedCheckpoint = numberField(Option.getOrUndefined(marker)?.value, "checkpoints")
    const checkpointLines = yield* sink.checkpoints(stream).pipe(Effect.mapError(fail("checkpoints", stream)))
    const checkpoints = checkpointLines.flatMap((line) => {
      try {
        const seq = (JSON.parse(line) as { seq?: unknown }).seq
        return typeof seq === "number" && Number.isInteger(seq) ? [{ seq, line }] : []
      } catch {
        return []
      }
    })
    const closedThrough = checkpoints.reduce((m, c) => Math.max(m, c.seq), 0)
    let objects = 0
    const base = `${bucket.prefix}${stream}/`
    // The bucket is the truth: objects uploaded after the marker was last written (a run
    // killed in between) are found by listing past the marker, so ranges never overlap.
    let token: string | undefined
    do {
      const page = yield* Effect.tryPromise({
        try: () =>
          bucket.client.send(
            new ListObjectsV2Command({
              Bucket: bucket.bucket,
              Prefix: `${base}records/`,
              StartAfter: `${base}records/${pad(shipped)}`,
              ...(token === undefined ? {} : { ContinuationToken: token })
            })
          ),
        catch: fail("ListObjectsV2", stream)
      })
      for (const o of page.Contents ?? []) {
        const m = /\/records\/(\d{16})-(\d{16})\.jsonl$/.exec(o.Key ?? "")
        if (m !== null) shipped = Math.max(shipped, Number(m[2]))
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    const save = () =>
      Progress.set(JOB, `stream#${stream}`, { records: shipped, checkpoints: shippedCheckpoint })
    while (shipped < closedThrough) {
      const from = shipped + 1
      const to = Math.min(closedThrough, shipped + per)
      const lines = yield* sink
        .scan(stream, from)
        .pipe(
          Stream.take(to - from + 1),
          Stream.runCollect,
          Effect.map(Chunk.toReadonlyArray),
          Effect.mapError(fail("scan", stream))
        )
      if (lines.length !== to - from + 1 || lines[0]?.position !== from) {
        return yield* new ShippingError({
          operation: "scan",
          stream,
          message: `expected records ${from}-${to}, the sink returned ${lines.length}`
        })
      }
      const body = `${lines.map((l) => l.line).join("\n")}\n`
      if (
        yield* upload(stream, `${base}records/${pad(from)}-${pad(to)}.jsonl`, body, "application/x-ndjson")
      ) {
        objects++
        yield* metrics.inc("aap_worker_audit_objects_shipped_total", { kind: "records" })
      }
      shipped = to
      yield* save()
    }
    for (const c of checkpoints) {
      if (c.seq <= shippedCheckpoint) continue
      const digest = Crypto.createHash("sha256").update(c.line).digest("hex").slice(0, 16)
      if (
        yield* upload(stream, `${base}checkpoints/${pad(c.seq)}-${digest}.json`, c.line, "application/json")
      ) {
        objects++
        yield* metrics.inc("aap_worker_audit_objects_shipped_total", { kind: "checkpoint" })
      }
    }
    if (closedThrough > shippedCheckpoint) {
      shippedCheckpoint = closedThrough
      yield* save()
    }
    return { shippedThrough: shipped, objects }
  })

/** Checkpoint and ship every stream. */
export const run = (
  options: Options = {}
): Effect.Effect<
  ReadonlyArray<StreamResult>,
  ShippingError | Progress.ProgressError,
  | AuditReader.AuditReader
  | AuditSink.AuditSink
  | AuditKeys.AuditKeys
  | AuditBucket
  | Progress.Progress
  | WorkerMetrics
> =>
  Effect.gen(function* () {
    const sink = yield* AuditSink.AuditSink
    const streams = yield* sink.streams.pipe(Effect.mapError(fail("streams", "*")))
    const results: Array<StreamResult> = []
    for (const stream of streams) {
      const cp = yield* checkpointStream(stream)
      if (cp.broken) {
        results.push({
          stream,
          checkpointed: Option.none(),
          shippedThrough: 0,
          objects: 0,
          skipped: "broken"
        })
        continue
      }
      const shipped = yield* shipStream(stream, options)
      results.push({ stream, checkpointed: cp.checkpointed, ...shipped })
    }
    return results
  }).pipe(Effect.withSpan("AuditShipping.run"))
