// @vitest-environment node
// The client against the real daemon (python, bundled MiniLM, OCR off) on a temporary vault.
// Needs the project's virtualenv (../.venv, or $VAULTLENS_PYTHON). Skips without it, unless
// VAULTLENS_E2E=required (as in .ci/run), where a missing python fails; VAULTLENS_E2E=off skips it
// (scripts/test.sh --fast: the daemon's start dominates the plugin's test time).

import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HIT_FIELDS, REINDEX_FIELDS, SEARCH_FIELDS, SIMILAR_FIELDS, VaultlensClient, VaultlensError,
} from "../src/client";

const PYTHON = process.env.VAULTLENS_PYTHON ?? resolve(__dirname, "../../.venv/bin/python");
const REQUIRED = process.env.VAULTLENS_E2E === "required";
const HAVE_PYTHON = existsSync(PYTHON);
const OFF = process.env.VAULTLENS_E2E === "off";
if (REQUIRED && !HAVE_PYTHON) throw new Error(`VAULTLENS_E2E=required but ${PYTHON} is missing`);

function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => done(port));
    });
  });
}

describe.skipIf(!HAVE_PYTHON || OFF)("the client against a real daemon", () => {
  let root: string;
  let daemon: ChildProcess;
  let client: VaultlensClient;
  let url: string;
  let token: string;
  let log = "";

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "vaultlens-e2e-"));
    const vault = join(root, "vault");
    mkdirSync(join(vault, "Attachments"), { recursive: true });
    writeFileSync(join(vault, "Sync.md"), "# Selective sync\n\nTo stop Obsidian Sync from "
      + "touching a folder, exclude it in the selective sync settings.\n");
    writeFileSync(join(vault, "Pier.md"), "# Pier\n\nWe watched the storm roll over the old "
      + "pier at night.\n\n![[board.png]]\n");
    execFileSync(PYTHON, ["-c", "import sys; from PIL import Image; "
      + "Image.new('RGB', (64, 48), 'teal').save(sys.argv[1])", join(vault, "Attachments/board.png")]);
    const args = ["--vault", vault, "--data-dir", join(root, "data")];
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    daemon = spawn(PYTHON, ["-m", "vaultlens", "serve", ...args, "--model", "minilm",
      "--ocr", "off", "--port", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
    daemon.stdout!.on("data", (d) => (log += d));
    daemon.stderr!.on("data", (d) => (log += d));
    token = execFileSync(PYTHON, ["-m", "vaultlens", "token", ...args]).toString().trim();
    client = new VaultlensClient({ url, token, timeoutMs: 10_000 });
    const deadline = Date.now() + 150_000;
    for (;;) {
      try {
        const s = await client.status();
        if (s.vector_search_ready && !s.indexing && s.counts.files === 3) break;
      } catch (error) {
        if (!(error instanceof VaultlensError) || error.kind !== "unreachable") throw error;
      }
      if (Date.now() > deadline) throw new Error(`the daemon did not get ready:\n${log}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  });

  afterAll(async () => {
    // the daemon writes its last state as it stops: the folder goes once it has gone
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = new Promise((resolve) => daemon.once("exit", resolve));
      daemon.kill("SIGTERM");
      await gone;
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 30_000);

  it("searches", async () => {
    const answer = await client.search({ query: "keep sync away from one directory", k: 3 });
    expect(answer.partial).toBe(false);
    expect(answer.results[0].path).toBe("Sync.md");
    expect(answer.results[0].line).toBe(3);
    const images = await client.search({ query: "storm over the pier", kind: "image" });
    expect(images.results.map((h) => h.path)).toEqual(["Attachments/board.png"]);
    expect(images.results[0].links[0].note).toBe("Pier.md");
  });

  it("finds what is similar to a vault file", async () => {
    const hits = await client.similar({ path: "Attachments/board.png", k: 3 });
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => h.path !== "Attachments/board.png")).toBe(true);
  });

  it("indexes a new file on request", async () => {
    writeFileSync(join(root, "vault", "Fresh.md"), "# Fresh\n\nThe walrus ledger reconciliation.\n");
    expect((await client.reindex({ path: "Fresh.md" })).queued).toBe("Fresh.md");
    const deadline = Date.now() + 60_000;
    for (;;) {
      const found = await client.search({ query: "walrus ledger", k: 1 });
      if (found.results[0]?.path === "Fresh.md") break;
      if (Date.now() > deadline) throw new Error("Fresh.md never became searchable");
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it("refuses a wrong token, and says so in a typed error", async () => {
    const wrong = new VaultlensClient({ url, token: "not-the-token" });
    const error = await wrong.search({ query: "sync" }).catch((e) => e);
    expect(error).toBeInstanceOf(VaultlensError);
    expect(error.kind).toBe("unauthorized");
    const bad = await client.search({ query: "sync before:someday" }).catch((e) => e);
    expect(bad.kind).toBe("bad_request");
    expect(bad.message).toContain("not a date");
  });

  it("has the types the daemon's OpenAPI document describes", async () => {
    const answer = await fetch(`${url}/api/openapi.json`,
      { headers: { Authorization: `Bearer ${token}` } });
    const doc = await answer.json() as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: {
        properties: Record<string, unknown> } }> } }>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    const body = (path: string) => Object.keys(
      doc.paths[path].post.requestBody!.content["application/json"].schema.properties).sort();
    // `image` is described only by a daemon whose model can see (this one's cannot)
    const search = body("/api/search");
    expect([...SEARCH_FIELDS].filter((f) => f !== "image" || search.includes("image")).sort())
      .toEqual(search);
    expect([...SIMILAR_FIELDS].sort()).toEqual(body("/api/similar"));
    expect([...REINDEX_FIELDS].sort()).toEqual(body("/api/reindex"));
    expect([...HIT_FIELDS].sort()).toEqual(Object.keys(doc.components.schemas.Hit.properties).sort());
  });
});
