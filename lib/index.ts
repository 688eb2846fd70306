/**
 * Uplink's logic for scripts that do without Node-RED: the same queue, uploader, connectivity monitor, capture and
 * recorder the nodes wrap. `require('node-red-contrib-uplink')` loads the queue, and with it the sqlite3 binding.
 */

// The message every node reads and writes
export { readUplink, uplinkRecord, fileOf } from './message/uplink';
export type { Uplink, CapturedFile, QueueItemRef, UploadDoneInfo, UploadFailureInfo } from './message/uplink';
export { encodeMessage, decodeMessage } from './message/codec';
export { renderKey, sanitizeKey, validateKeyTemplate, DEFAULT_KEY_TEMPLATE } from './message/object-key';

// The durable queue
export { OfflineQueue, InputError } from './queue/engine';
export type { QueueEvents, HandleResult } from './queue/engine';
export { QueueStore, QueueFullError, QueueStoreError, DEFAULT_POLICY, ITEM_STATES } from './queue/store';
export type { QueuePolicy, ItemRow, ItemState } from './queue/store';
export { parseQueueConfig } from './queue/config';
export type { QueueConfig } from './queue/config';
export { classifyInput } from './queue/input';
export { statusOf } from './queue/status';
export type { QueueStats, QueueStatus } from './queue/status';
export type { ItemProgress, ProgressState } from './queue/item-progress';

// Uploads
export { Uploader } from './upload/uploader';
export { UploadTarget } from './upload/target';
export { BACKENDS, BACKEND_KINDS } from './upload/registry';
export type { BackendKind, BackendEntry } from './upload/registry';
export { UploadError } from './upload/types';
export type { StorageBackend, UploadItem, UploadResult } from './upload/types';

// Connectivity
export { ConnectivityMonitor, DEFAULT_TIMING } from './connectivity/monitor';
export type { ConnectivityState } from './connectivity/monitor';
export { parseConnectivityConfig } from './connectivity/config';
export { runProbe } from './connectivity/probes';

// Capture and recording
export { Capturer } from './capture/still';
export { createClipRecorder } from './capture/clip';
export { createSource } from './capture/sources';
export { parseCaptureConfig } from './capture/config';
export { CaptureError } from './capture/types';
export { Recorder } from './recorder/supervisor';
export { parseRecorderConfig } from './recorder/config';
