// A typed client for the vaultlens daemon. No Obsidian import: other editors and Node >= 18 use
// it as it is (`new VaultlensClient({ url, token })`).

import type {
  Hit, ReindexRequest, SearchAnswer, SearchRequest, SimilarRequest, Status,
} from "./types";

export * from "./types";

export const DEFAULT_URL = "http://127.0.0.1:27123";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** What went wrong, in terms a user can act on. */
export type ErrorKind =
  | "unreachable" // nothing answers at the URL: the daemon is not running
  | "timeout" // it did not answer in time
  | "unauthorized" // the token is missing or wrong
  | "bad_request" // the request was refused as invalid (the message says why)
  | "not_found"
  | "unavailable" // e.g. the model is still loading
  | "server" // anything else the daemon reported
  | "config"; // the client was set up wrongly (e.g. a non-localhost URL)

export class VaultlensError extends Error {
  constructor(readonly kind: ErrorKind, message: string, readonly status?: number) {
    super(message);
    this.name = "VaultlensError";
  }
}

export interface ClientOptions {
  url?: string;
  token: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Only a daemon on this machine: a client never sends the token anywhere else. */
export function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new VaultlensError("config", `${url} is not a URL (expected ${DEFAULT_URL})`);
  }
  if (parsed.protocol !== "http:" || !LOOPBACK.has(parsed.hostname)) {
    throw new VaultlensError(
      "config", `${url}: vaultlens talks only to a daemon on this machine (http://127.0.0.1:PORT)`);
  }
  return parsed.origin;
}

export class VaultlensClient {
  readonly url: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly fetcher: typeof fetch;

  constructor(options: ClientOptions) {
    this.url = checkUrl(options.url ?? DEFAULT_URL);
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.fetcher = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  health(): Promise<{ ok: true; version: string }> {
    return this.json("GET", "/api/health");
  }

  status(): Promise<Status> {
    return this.json("GET", "/api/status");
  }

  search(request: SearchRequest): Promise<SearchAnswer> {
    return this.json("POST", "/api/search", request);
  }

  async similar(request: SimilarRequest): Promise<Hit[]> {
    return (await this.json<{ results: Hit[] }>("POST", "/api/similar", request)).results;
  }

  reindex(request: ReindexRequest): Promise<{ ok: true; queued: string }> {
    return this.json("POST", "/api/reindex", request);
  }

  /** A thumbnail (WebP) of an image or PDF page hit. */
  async thumbnail(id: number): Promise<Blob> {
    const response = await this.send("GET", `/api/items/${id}/thumbnail`);
    return response.blob();
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    return (await response.json()) as T;
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response: Response;
    try {
      response = await this.fetcher(this.url + path, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (error) {
      if (controller.signal.aborted) {
        throw new VaultlensError("timeout", `the vaultlens daemon at ${this.url} did not answer `
          + `within ${this.timeoutMs / 1000} s`);
      }
      throw new VaultlensError("unreachable", `no vaultlens daemon answers at ${this.url} `
        + `(${error instanceof Error ? error.message : String(error)})`);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      throw await errorOf(response);
    }
    return response;
  }
}

const KINDS: Record<number, ErrorKind> = {
  400: "bad_request", 401: "unauthorized", 403: "bad_request", 404: "not_found",
  413: "bad_request", 503: "unavailable",
};

async function errorOf(response: Response): Promise<VaultlensError> {
  let message = `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    message = body.error?.message ?? message;
  } catch {
    // not the daemon's error shape: keep the status line
  }
  return new VaultlensError(KINDS[response.status] ?? "server", message, response.status);
}
