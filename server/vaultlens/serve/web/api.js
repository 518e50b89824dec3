// The daemon's API from the page: the token, and requests that carry it.
// The token arrives once in the address's fragment (#token=…, never sent to a server), moves
// to sessionStorage, and is removed from the address bar and the history at once.

const KEY = "vaultlens-token";

export class SignInNeeded extends Error {}

export function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem(KEY, token);
    history.replaceState(history.state, "", location.pathname + location.search);
  }
}

export function setToken(token) {
  sessionStorage.setItem(KEY, token.trim());
}

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

async function send(path, init) {
  if (!token()) throw new SignInNeeded("missing");
  const headers = { Authorization: `Bearer ${token()}`, ...(init.headers || {}) };
  const resp = await fetch(path, { ...init, headers });
  if (resp.status === 401) throw new SignInNeeded("wrong");
  return resp;
}

export async function call(path, body, signal) {
  const init = body === undefined
    ? { method: "GET", signal }
    : { method: "POST", body: JSON.stringify(body), signal,
        headers: { "Content-Type": "application/json" } };
  const resp = await send(path, init);
  const answer = await resp.json();
  if (!answer.ok) throw new Error(answer.error ? answer.error.message : `HTTP ${resp.status}`);
  return answer;
}

export async function upload(path, file) {
  const form = new FormData();
  form.append("image", file);
  const resp = await send(path, { method: "POST", body: form });
  const answer = await resp.json();
  if (!answer.ok) throw new Error(answer.error.message);
  return answer;
}

// Thumbnails are fetched with the Authorization header and shown as blob: URLs, so the token
// never goes into an <img src>.
const thumbs = new Map();

export async function thumbnail(id) {
  if (!thumbs.has(id)) {
    thumbs.set(id, send(`/api/items/${id}/thumbnail`, { method: "GET" }).then(async (r) => {
      if (!r.ok) return null;
      return URL.createObjectURL(await r.blob());
    }).catch(() => null));
  }
  return thumbs.get(id);
}
