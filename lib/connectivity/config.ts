import net from 'net';
import { parseStatusList, SettingsReader, text } from '../util/settings';
import { ConnectivityTiming, DEFAULT_TIMING } from './monitor';
import { ProbeSpec } from './probes';

export interface ConnectivityConfig {
  probe: ProbeSpec;
  timing: ConnectivityTiming;
  gate: boolean;
}

type Raw = Record<string, unknown>;

const str = text;

/**
 * The probe for an upload target's endpoint (what the uploads will use): an HTTP HEAD where any answer below 500
 * means reachable (a bucket answers 403 to an anonymous request), or the folder itself for a folder target.
 */
export function targetProbeSettings(endpoint: string): Raw {
  if (endpoint.startsWith('file://')) return { probeType: 'path', path: decodeURIComponent(new URL(endpoint).pathname) };
  return { probeType: 'http', url: endpoint, method: 'HEAD', expect: '' };
}

export interface ConnectivityContext {
  /**
   * Where this Node-RED serves its HTTP nodes (http://127.0.0.1:1880, with httpNodeRoot): a probe URL that starts
   * with "/" is one of this Node-RED's own endpoints (a flow's stand-in target).
   */
  localBase?: string;
}

/** Validates the editor settings once, at deploy, listing every problem. Times are in seconds in the editor. */
export function parseConnectivityConfig(raw: Raw, context: ConnectivityContext = {}): ConnectivityConfig {
  const r = new SettingsReader(raw);
  const errors = r.errors;
  const seconds = (key: string, label: string, def: number, min: number, max: number): number =>
    Math.round(r.num(key, label, def / 1000, min, max, { unit: 'seconds' }) * 1000);

  const kind = str(raw.probeType) || 'http';
  let probe: ProbeSpec | undefined;
  if (kind === 'http') {
    const given = r.required('url', 'URL', 'URL is required for an HTTP probe');
    const local = given.startsWith('/') && !given.startsWith('//');
    if (local && !context.localBase) errors.push(`URL "${given}" is a path on this Node-RED, which serves no HTTP nodes (httpNodeRoot is off)`);
    const url = local && context.localBase ? context.localBase.replace(/\/+$/, '') + given : given;
    let parsed: URL | undefined;
    if (url !== '' && !(local && !context.localBase)) {
      try {
        parsed = new URL(url);
      } catch {
        errors.push(`URL "${url}" is not a valid URL`);
      }
    }
    if (parsed && parsed.protocol !== 'http:' && parsed.protocol !== 'https:') errors.push(`URL must start with http:// or https:// (got "${url}")`);
    if (parsed && (parsed.username || parsed.password)) errors.push('URL must not contain a user name or password: they would show in the flow');
    const method = str(raw.method).toUpperCase() || 'HEAD';
    if (method !== 'HEAD' && method !== 'GET') errors.push(`Method must be HEAD or GET (got "${method}")`);
    let expect: number[] | undefined;
    try {
      const list = parseStatusList(str(raw.expect));
      expect = list.length ? list : undefined;
    } catch (e) {
      errors.push(`Expected status: ${(e as Error).message}`);
    }
    if (parsed) probe = { kind: 'http', url: parsed.toString(), method: method as 'HEAD' | 'GET', expect };
  } else if (kind === 'tcp') {
    const host = r.required('host', 'host', 'Host is required for a TCP probe');
    const portText = r.required('port', 'port', 'Port is required for a TCP probe');
    const port = Number(portText);
    if (portText !== '' && (!/^\d+$/.test(portText) || port < 1 || port > 65535)) errors.push(`Port must be a number from 1 to 65535 (got "${portText}")`);
    probe = { kind: 'tcp', host, port };
  } else if (kind === 'dns') {
    const hostname = r.required('hostname', 'name to look up', 'Name is required for a DNS probe');
    if (hostname !== '' && (!/^[A-Za-z0-9_.-]+$/.test(hostname) || hostname.length > 253)) errors.push(`Name "${hostname}" is not a host name to look up`);
    const server = str(raw.dnsServer);
    if (server !== '' && !isServer(server)) errors.push(`DNS server "${server}" must be an IP address, optionally with :port`);
    probe = { kind: 'dns', hostname, server: server || undefined };
  } else if (kind === 'path') {
    const dir = r.required('path', 'folder', 'Folder is required for a folder probe');
    if (dir !== '' && !dir.startsWith('/')) errors.push(`Folder "${dir}" must be an absolute path`);
    probe = { kind: 'path', path: dir };
  } else {
    errors.push(`Probe must be http, tcp, dns or path (got "${kind}")`);
  }

  const timeoutMs = seconds('timeout', 'Timeout', DEFAULT_TIMING.timeoutMs, 0.05, 120);
  const onlineIntervalMs = seconds('interval', 'Interval while online', DEFAULT_TIMING.onlineIntervalMs, 0.1, 86400);
  const offlineMinMs = seconds('offlineMin', 'First retry while offline', DEFAULT_TIMING.offlineMinMs, 0.01, 3600);
  const offlineMaxMs = seconds('offlineMax', 'Slowest retry while offline', DEFAULT_TIMING.offlineMaxMs, 0.01, 86400);
  if (offlineMaxMs < offlineMinMs) errors.push('The slowest retry while offline must not be faster than the first');
  const failures = r.num('failures', 'Failures to go offline', DEFAULT_TIMING.failuresToOffline, 1, 100, { integer: true });

  r.check();
  if (!probe) throw new Error(errors.join('; '));
  return {
    probe,
    timing: { ...DEFAULT_TIMING, timeoutMs, onlineIntervalMs, offlineMinMs, offlineMaxMs, failuresToOffline: failures },
    gate: raw.gate === true || raw.gate === 'true',
  };
}

function isServer(s: string): boolean {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return net.isIPv6(v6[1]) && (!v6[2] || (Number(v6[2]) >= 1 && Number(v6[2]) <= 65535));
  const [host, port, ...rest] = s.split(':');
  if (rest.length > 0) return net.isIPv6(s);
  return net.isIPv4(host) && (port === undefined || (/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535));
}

/** What to show for the target in logs and the status, without anything secret. */
export function describeProbe(p: ProbeSpec): string {
  if (p.kind === 'http') {
    const u = new URL(p.url);
    return `${p.method} ${u.origin}${u.pathname}`;
  }
  if (p.kind === 'tcp') return `TCP ${p.host}:${p.port}`;
  if (p.kind === 'path') return `folder ${p.path}`;
  return `DNS ${p.hostname}`;
}
