import { conformance } from "./AuditSinkConformance.js"
import { dynamoHarness, jsonlHarness, memoryHarness } from "./harness.js"

conformance("memory", memoryHarness)
conformance("jsonl", jsonlHarness())
conformance("jsonl, 1 KiB segments", jsonlHarness({ maxSegmentBytes: 1024 }))
conformance("dynamodb (dynalite)", dynamoHarness)
