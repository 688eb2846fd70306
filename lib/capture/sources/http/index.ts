export { HttpCameraSource } from './source';
export { parseHttpCameraSettings, reolinkUrl } from './settings';
export type { HttpCameraSettings } from './settings';
export { parseChallenges } from './digest';
