import { describe, expect, it } from "vitest";
import { checkUrl, VaultlensClient, VaultlensError } from "../src/client";

type Call = { url: string; init: RequestInit };

function fakeFetch(answer: (call: Call) => Response | Promise<Response>): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetcher = (async (url: string, init: RequestInit) => {
    const call = { url, init };
    calls.push(call);
    return answer(call);
  }) as unknown as typeof fetch;
  return { fetch: fetcher, calls };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe("VaultlensClient", () => {
  it("sends the token and the JSON body, and reads the answer", async () => {
    const { fetch, calls } = fakeFetch(() => json({ ok: true, results: [], partial: false, took_ms: 1 }));
    const client = new VaultlensClient({ token: "t0k", fetch });
    const answer = await client.search({ query: "purple chart", k: 3, kind: "image" });
    expect(answer.results).toEqual([]);
    expect(calls[0].url).toBe("http://127.0.0.1:27123/api/search");
    expect(calls[0].init.method).toBe("POST");
    expect((calls[0].init.headers as Record<string, string>).Authorization).toBe("Bearer t0k");
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ query: "purple chart", k: 3, kind: "image" });
  });

  it("turns the daemon's error shape into a typed error", async () => {
    const { fetch } = fakeFetch(() => json({ ok: false, error: { code: "unauthorized", message: "bad token" } }, 401));
    const error = await new VaultlensClient({ token: "x", fetch }).status().catch((e) => e);
    expect(error).toBeInstanceOf(VaultlensError);
    expect(error.kind).toBe("unauthorized");
    expect(error.message).toBe("bad token");
    expect(error.status).toBe(401);
  });

  it("says unreachable when nothing answers", async () => {
    const { fetch } = fakeFetch(() => { throw new TypeError("fetch failed"); });
    const error = await new VaultlensClient({ token: "x", fetch }).health().catch((e) => e);
    expect(error.kind).toBe("unreachable");
  });

  it("gives up after its timeout instead of spinning", async () => {
    const { fetch } = fakeFetch(({ init }) => new Promise((_, reject) => {
      init.signal!.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    }));
    const started = Date.now();
    const error = await new VaultlensClient({ token: "x", fetch, timeoutMs: 50 }).status().catch((e) => e);
    expect(error.kind).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("talks only to this machine", () => {
    expect(checkUrl("http://localhost:27123/")).toBe("http://localhost:27123");
    expect(checkUrl("http://[::1]:9")).toBe("http://[::1]:9");
    for (const bad of ["http://example.com:27123", "https://127.0.0.1:27123", "not a url", "http://10.0.0.2"]) {
      expect(() => new VaultlensClient({ url: bad, token: "x" })).toThrow(VaultlensError);
    }
  });
});
