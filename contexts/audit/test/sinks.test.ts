import { conformance } from "./AuditSinkConformance.js"
import { jsonlHarness, memoryHarness } from "./harness.js"

conformance("memory", memoryHarness)
conformance("jsonl", jsonlHarness())
conformance("jsonl, 1 KiB segments", jsonlHarness({ maxSegmentBytes: 1024 }))
