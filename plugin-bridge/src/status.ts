// The status bar's one line: what the daemon is doing, from /api/status's `state`.

import type { Status } from "./types";

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function statusLine(status: Status): string {
  const model = status.model.split(":")[0];
  const visual = status.visual_search ? "visual on" : "visual off";
  const { done, total, files_per_s: rate, eta_s: eta } = status.progress;
  let work = "";
  if (status.state === "loading") {
    work = " · loading the model (keywords only)";
  } else if (status.state === "starting") {
    work = " · starting";
  } else if (status.state === "indexing") {
    const pace = rate ? ` · ${rate.toFixed(1)} files/s` : "";
    const left = eta !== null && eta !== undefined ? ` · ${duration(eta)} left`
      : status.progress.eta === "estimating" ? " · ETA estimating" : "";
    work = ` · indexing ${done}/${total}${pace}${left}`;
  } else if (status.queue) {
    work = ` · ${status.queue} queued`;
  }
  const problem = status.problem ? " · ⚠ index problem" : "";
  return `vaultlens ✓ ${model} · ${visual}${work}${problem}`;
}

export const OFFLINE = "vaultlens ✗ offline";
