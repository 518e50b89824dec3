// What to tell the user when the daemon cannot help: what happened and what to do.

import { VaultlensError } from "./client";

export function explain(error: unknown, url: string): string {
  if (!(error instanceof VaultlensError)) {
    return `vaultlens: ${error instanceof Error ? error.message : String(error)}`;
  }
  switch (error.kind) {
    case "unreachable":
      return `vaultlens: no daemon at ${url}. Start it in a terminal with `
        + "`vaultlens serve --vault /path/to/this/vault`.";
    case "timeout":
      return `vaultlens: the daemon at ${url} did not answer in time; it may be busy. Try again.`;
    case "unauthorized":
      return "vaultlens: the daemon refused the token. Print the right one with "
        + "`vaultlens token --vault /path/to/this/vault` and paste it in Settings → vaultlens.";
    case "config":
      return `vaultlens: ${error.message}. Fix the daemon URL in Settings → vaultlens.`;
    default:
      return `vaultlens: ${error.message}`;
  }
}
