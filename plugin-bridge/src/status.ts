// The status bar's one line.

import type { Status } from "./types";

export function statusLine(status: Status): string {
  const model = status.model.split(":")[0];
  const visual = status.visual_search ? "visual on" : "visual off";
  const { done, total } = status.progress;
  const work = status.indexing ? ` · indexing ${done}/${total}` : status.queue ? ` · ${status.queue} queued` : "";
  return `vaultlens ✓ ${model} · ${visual}${work}`;
}

export const OFFLINE = "vaultlens ✗ offline";
