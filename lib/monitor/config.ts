import os from 'os';
import { SettingsReader, text } from '../util/settings';
import { AlertTiming, DEFAULT_ALERT_TIMING } from './alerts';
import { DEFAULT_THRESHOLDS, Thresholds } from './health';

export interface MonitorConfig {
  /** The device's name in answers and alerts (the host name when blank). */
  device: string;
  /** Serve GET /uplink/health. */
  health: boolean;
  /** Serve GET /uplink/metrics. */
  metrics: boolean;
  thresholds: Thresholds;
  alerts: AlertTiming;
  /** How often the alerts are checked, ms. */
  checkEveryMs: number;
}

const bool = (v: unknown, def: boolean): boolean => (v === undefined || v === '' ? def : v === true || v === 'true');

/** Validates the device monitor's editor settings at deploy, listing every problem. Times in seconds, space in MB. */
export function parseMonitorConfig(raw: Record<string, unknown>, hostname: string = os.hostname()): MonitorConfig {
  const r = new SettingsReader(raw);
  const t = DEFAULT_THRESHOLDS;
  const a = DEFAULT_ALERT_TIMING;
  const day = 86_400;
  const device = text(raw.device) || hostname;
  if (device.length > 100) r.error('Device name must be at most 100 characters');
  const thresholds: Thresholds = {
    maxPending: r.num('maxPending', 'Pending items', t.maxPending, 1, 1e9, { integer: true }),
    maxOldestPendingS: r.num('maxOldestPendingS', 'Oldest pending item', t.maxOldestPendingS, 1, 365 * day, { unit: 'seconds' }),
    offlineForS: r.num('offlineForS', 'Offline for', t.offlineForS, 0, 30 * day, { unit: 'seconds' }),
    captureFailures: r.num('captureFailures', 'Failed captures in a row', t.captureFailures, 1, 1000, { integer: true }),
    minDiskFreeBytes: Math.round(r.num('minDiskFreeMB', 'Disk free', t.minDiskFreeBytes / 1024 ** 2, 0, 1e7, { unit: 'MB' }) * 1024 ** 2),
    recorderStalledS: r.num('recorderStalledS', 'Recorder not recording for', t.recorderStalledS, 1, 30 * day, { unit: 'seconds' }),
    clockJumpS: r.num('clockJumpS', 'Clock jump', t.clockJumpS, 1, 365 * day, { unit: 'seconds' }),
  };
  const alerts: AlertTiming = {
    raiseAfterS: r.num('raiseAfterS', 'Raise after', a.raiseAfterS, 0, day, { unit: 'seconds' }),
    clearAfterS: r.num('clearAfterS', 'Clear after', a.clearAfterS, 0, day, { unit: 'seconds' }),
    minIntervalS: r.num('minIntervalS', 'Minimum interval between alerts', a.minIntervalS, 0, 7 * day, { unit: 'seconds' }),
  };
  const checkEveryMs = Math.round(r.num('checkEveryS', 'Check every', 15, 0.2, 3600, { unit: 'seconds' }) * 1000);
  r.check();
  return { device, health: bool(raw.health, true), metrics: bool(raw.metrics, true), thresholds, alerts, checkEveryMs };
}
