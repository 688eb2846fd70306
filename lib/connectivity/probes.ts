import fs from 'fs';
import http from 'http';
import https from 'https';
import net from 'net';
import { Resolver } from 'dns/promises';
import { fmtSeconds } from '../util/format';

export type ProbeSpec =
  | { kind: 'http'; url: string; method: 'HEAD' | 'GET'; expect?: number[] }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'dns'; hostname: string; server?: string }
  /** A folder target (NAS share, USB disk): reachable when the folder is there, that is, mounted. */
  | { kind: 'path'; path: string };

export interface ProbeResult {
  ok: boolean;
  latencyMs: number;
  /** What a person reads in the status: "HTTP 204", "connection refused", "timed out after 3 s". */
  reason: string;
}

/** Runs one probe; never throws, never outlives its timeout. */
export async function runProbe(spec: ProbeSpec, timeoutMs: number): Promise<ProbeResult> {
  const started = process.hrtime.bigint();
  const elapsed = () => Number((process.hrtime.bigint() - started) / 1_000_000n);
  try {
    const reason = await withTimeout(
      (signal) =>
        spec.kind === 'http'
          ? httpProbe(spec, signal)
          : spec.kind === 'tcp'
            ? tcpProbe(spec, signal)
            : spec.kind === 'dns'
              ? dnsProbe(spec, timeoutMs)
              : pathProbe(spec.path),
      timeoutMs,
    );
    return { ok: true, latencyMs: elapsed(), reason };
  } catch (e) {
    return { ok: false, latencyMs: elapsed(), reason: describeNetworkError(e, timeoutMs) };
  }
}

class ProbeTimeout extends Error {}
class ProbeRejected extends Error {}

function withTimeout<T>(fn: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(new ProbeTimeout());
    }, ms);
  });
  return Promise.race([fn(ac.signal), timeout]).finally(() => clearTimeout(timer));
}

function httpProbe(spec: { url: string; method: 'HEAD' | 'GET'; expect?: number[] }, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const url = new URL(spec.url);
    const mod = url.protocol === 'https:' ? https : http;
    // A fresh connection every time: a kept-alive socket could hide that the path to the server is gone.
    const req = mod.request(url, { method: spec.method, agent: false, signal, headers: { 'user-agent': 'uplink-connectivity' } }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      req.destroy();
      const ok = spec.expect && spec.expect.length > 0 ? spec.expect.includes(status) : status > 0 && status < 500;
      if (ok) resolve(`HTTP ${status}`);
      else reject(new ProbeRejected(`HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`));
    });
    req.on('error', reject);
    req.end();
  });
}

function tcpProbe(spec: { host: string; port: number }, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: spec.host, port: spec.port });
    const onAbort = () => socket.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      socket.destroy();
      signal.removeEventListener('abort', onAbort);
      resolve(`TCP ${spec.port} open`);
    });
    socket.once('error', (e) => {
      signal.removeEventListener('abort', onAbort);
      reject(e);
    });
  });
}

async function pathProbe(dir: string): Promise<string> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(dir);
  } catch {
    throw new ProbeRejected('folder not there (not mounted?)');
  }
  if (!st.isDirectory()) throw new ProbeRejected('not a folder');
  await fs.promises.access(dir, fs.constants.W_OK).catch(() => {
    throw new ProbeRejected('folder not writable');
  });
  return 'folder present';
}

async function dnsProbe(spec: { hostname: string; server?: string }, timeoutMs: number): Promise<string> {
  // c-ares, not getaddrinfo: a hanging system lookup would otherwise hold one of libuv's four worker threads, which
  // SQLite and file I/O share.
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  if (spec.server) resolver.setServers([spec.server]);
  try {
    const v4 = await resolver.resolve4(spec.hostname).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENODATA') return resolver.resolve6(spec.hostname);
      throw e;
    });
    return `DNS ${v4[0]}`;
  } finally {
    resolver.cancel();
  }
}

export function describeNetworkError(e: unknown, timeoutMs: number): string {
  if (e instanceof ProbeTimeout) return `timed out after ${fmtSeconds(timeoutMs)}`;
  if (e instanceof ProbeRejected) return e.message;
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ENOTFOUND':
      return 'DNS: name not found';
    case 'EAI_AGAIN':
      return 'DNS: lookup failed (temporary)';
    case 'ETIMEOUT':
    case 'ETIMEDOUT':
      return `timed out after ${fmtSeconds(timeoutMs)}`;
    case 'ESERVFAIL':
      return 'DNS: server failure';
    case 'EREFUSED':
      return 'DNS: query refused';
    case 'ECONNABORTED':
    case 'ABORT_ERR':
      return `timed out after ${fmtSeconds(timeoutMs)}`;
    default:
      if (err?.code && /CERT|SSL|TLS/.test(err.code)) return `TLS: ${err.code}`;
      return err?.message ?? String(e);
  }
}

