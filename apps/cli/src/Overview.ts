/**
 * What `aap`, `aap --help` and `aap --version` print. Plain strings, no imports beyond the
 * package version: `bin.ts` answers these without loading the command tree (ADR 0061).
 * `test/cli.test.ts` checks that every command listed here exists and vice versa.
 */
import packageJson from "../package.json" with { type: "json" }

export const version: string = packageJson.version

/** [command, summary] in the order shown. */
export const commands: ReadonlyArray<readonly [string, string]> = [
  ["catalog validate|show [FILE]", "check or show a capability catalog (local)"],
  ["keys init|rotate|status", "manage the local keyring under AAP_HOME"],
  ["secret put|list|rm WALLET/NAME", "store, list, delete vault secrets (value from stdin or --file)"],
  ["agent invite AGENT", "mint a single-use link code for an agent"],
  ["login --code CODE", "redeem a link code; saves the agent token (0600)"],
  ["session request|list|show|approve|deny|revoke", "request and decide sessions (--wait)"],
  ["exec CAPABILITY [--ttl D] -- CMD ARGS...", "run CMD with a credential injected, masked, revoked after"],
  ["aws credential-process CAPABILITY", "credential_process JSON for ~/.aws/config"],
  ["audit tail|verify", "read and verify the hash-chained audit log"],
  ["serve", "run the broker (embedded mode by default)"],
  ["worker", "run the background worker"],
  ["demo", "a guided tour against a running broker"]
]

export const overview = (): string => {
  const width = Math.max(...commands.map(([c]) => c.length))
  return [
    `aap ${version}: Agent Access Plane, short-lived audited credentials for AI agents`,
    "",
    "Usage: aap COMMAND [OPTIONS]",
    "",
    "Commands:",
    ...commands.map(([c, s]) => `  ${c.padEnd(width)}  ${s}`),
    "",
    "Every command takes --help; list, show and verify take --json.",
    "Broker URL and token: --url / --token-file, else AAP_URL / AAP_TOKEN, else the credentials",
    "file written by aap login ($XDG_CONFIG_HOME/aap/credentials or ~/.config/aap/credentials);",
    "operator commands also read $AAP_HOME/operator.token (default ./.aap).",
    "",
    "Shell completions: aap --completions bash|zsh|fish|sh",
    "Exit codes: 0 ok, 1 refused or failed, 2 usage, 3 broker unreachable or unavailable,",
    "4 not authenticated or not allowed; aap exec: the command's own code, 125-127 for aap's.",
    "Docs: docs/cli.md"
  ].join("\n")
}
