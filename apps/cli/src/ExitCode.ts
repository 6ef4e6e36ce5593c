import { Data } from "effect"

/**
 * A command has already printed its result and wants the process to exit with `code`.
 * `bin.ts` turns it into the exit code without printing anything more.
 */
export class ExitCode extends Data.TaggedError("ExitCode")<{ readonly code: number }> {}
