export { SupabaseBackend } from './backend';
export { BUFFER_LIMIT_BYTES, TUS_CHUNK_BYTES, parseSupabaseSettings } from './settings';
export type { SupabaseSettings } from './settings';
export { SOURCE_FIELDS, buildRow } from './row';
export type { TusResumeState } from './tus-upload';
