'use strict';
// Small HTTP helpers for end-to-end tests and benchmarks that drive a real node-red over its admin API.

/**
 * One request with a bounded time; the answer's body parsed as JSON when it is JSON.
 * @param {string} url
 * @param {{ method?: string, json?: unknown, text?: string, headers?: Record<string, string>, timeoutMs?: number }} [opts]
 * @returns {Promise<{ status: number, body: any, text: string }>}
 */
async function call(url, { method = 'GET', json, text, headers = {}, timeoutMs = 5000 } = {}) {
  const type = json !== undefined ? { 'content-type': 'application/json' } : text !== undefined ? { 'content-type': 'text/plain' } : {};
  const res = await fetch(url, {
    method,
    headers: { ...type, ...headers },
    body: json !== undefined ? JSON.stringify(json) : text,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const raw = await res.text();
  let body = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    /* text */
  }
  return { status: res.status, body, text: raw };
}

/**
 * Polls `fn` (which answers {ok, value}) until ok, bounded in time; a thrown error counts as not yet (unless it is
 * marked `fatal`). `opts` is the timeout in ms, or {timeoutMs, everyMs}.
 */
async function until(what, fn, opts = {}) {
  const { timeoutMs = 30_000, everyMs = 100 } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
    } catch (e) {
      if (e && e.fatal) throw e;
      last = { ok: false, value: e && e.message };
    }
    if (last && last.ok) return last.value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${String(JSON.stringify(last && last.value)).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Deploys flows as the editor does (credentials travel inside their nodes, once). */
async function deploy(red, flows) {
  const r = await call(`${red.url}/flows`, { method: 'POST', json: flows, headers: { 'Node-RED-Deployment-Type': 'full' } });
  if (r.status !== 204) throw new Error(`deploy answered ${r.status}: ${r.text}`);
}

module.exports = { call, until, deploy };
