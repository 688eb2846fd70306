import { FolderBackend, parseFolderSettings } from './backends/folder';
import { HttpBackend } from './backends/http';
import { parseHttpSettings } from './backends/http-settings';
import { S3Backend, parseS3Settings } from './backends/s3';
import { SupabaseBackend, parseSupabaseSettings } from './backends/supabase';
import { UploadTarget, parseBandwidth } from './target';
import { text } from '../util/settings';

type Raw = Record<string, unknown>;

/** Where the target runs: relative folders are inside Node-RED's user folder. */
export interface TargetContext {
  userDir?: string;
}

/** How a storage target is made from its config node: the secrets it keeps, and its settings read into a target. */
export interface BackendEntry {
  /** Fields kept in Node-RED's credentials (never in the flow file). */
  credentials: Record<string, 'text' | 'password'>;
  /**
   * Reads the config node's settings once, at deploy; throws an Error listing what is wrong, or a NotConfiguredError
   * naming what is still blank.
   */
  createTarget(def: Raw, credentials: Raw, context?: TargetContext): UploadTarget;
}

/**
 * Every storage backend, by the name the uploader node's "Backend" field uses. A new backend is a folder or file
 * under backends/ implementing StorageBackend, one line here, and a config node that registers this entry.
 */
/** How the editor keeps a credential: shown as typed, or masked as a secret (Node-RED's 'password' type). */
const SHOWN = 'text' as const;
const MASKED = 'password' as const;

export const BACKENDS = {
  s3: {
    credentials: { accessKeyId: SHOWN, secretAccessKey: MASKED },
    createTarget(def, creds) {
      const settings = parseS3Settings(def, creds);
      return new UploadTarget((bw) => new S3Backend(settings, bw), {
        concurrency: settings.concurrency,
        bytesPerSecond: parseBandwidth(def.bandwidthKBps),
        timeoutMs: settings.timeoutMs,
      });
    },
  },
  supabase: {
    credentials: { key: MASKED },
    createTarget(def, creds) {
      const settings = parseSupabaseSettings(def, creds);
      const concurrency = Number(text(def.concurrency) || 4);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
        throw new Error(`Concurrency must be a whole number from 1 to 64 (got "${String(def.concurrency)}")`);
      }
      return new UploadTarget((bw) => new SupabaseBackend(settings, bw), {
        concurrency,
        bytesPerSecond: parseBandwidth(def.bandwidthKBps),
        timeoutMs: settings.timeoutMs,
      });
    },
  },
  http: {
    credentials: { token: MASKED, username: SHOWN, password: MASKED },
    createTarget(def, creds) {
      const settings = parseHttpSettings(def, creds);
      return new UploadTarget((bw) => new HttpBackend(settings, bw), {
        concurrency: settings.concurrency,
        bytesPerSecond: parseBandwidth(def.bandwidthKBps),
        timeoutMs: settings.timeoutMs,
      });
    },
  },
  folder: {
    credentials: {},
    createTarget(def, _creds, context) {
      const settings = parseFolderSettings(def, context?.userDir);
      return new UploadTarget((bw) => new FolderBackend(settings, bw), {
        concurrency: 2,
        bytesPerSecond: parseBandwidth(def.bandwidthKBps),
        timeoutMs: settings.timeoutMs,
      });
    },
  },
} satisfies Record<string, BackendEntry>;

export type BackendKind = keyof typeof BACKENDS;
export const BACKEND_KINDS = Object.keys(BACKENDS) as BackendKind[];

export function isBackendKind(v: unknown): v is BackendKind {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(BACKENDS, v);
}
