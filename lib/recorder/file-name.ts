import { sanitizeSegment } from '../message/object-key';

export const DEFAULT_FILE_TEMPLATE = '{camera}_%Y%m%d_%H%M%S.mp4';

const STRFTIME = 'YmdHMSyjsF';
const PLACEHOLDERS = ['camera', 'segment'];

export class FileTemplateError extends Error {}

/** Checks a file name template at deploy: known placeholders and % codes only, and names that differ over time. */
export function validateFileTemplate(template: string): void {
  if (template.trim() === '') throw new FileTemplateError('the file name template is empty');
  const unknown = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]).filter((p) => !PLACEHOLDERS.includes(p));
  if (unknown.length > 0) throw new FileTemplateError(`unknown placeholder ${unknown.map((u) => `{${u}}`).join(', ')} (known: {camera} {segment})`);
  if (/[{}]/.test(template.replace(/\{[^}]*\}/g, ''))) throw new FileTemplateError('the file name template has an unmatched { or }');
  const codes = [...template.matchAll(/%(.?)/g)].map((m) => m[1]);
  const bad = codes.filter((c) => c === '' || (c !== '%' && !STRFTIME.includes(c)));
  if (bad.length > 0) throw new FileTemplateError(`unknown time code ${bad.map((c) => `%${c}`).join(', ')} (known: ${[...STRFTIME].map((c) => `%${c}`).join(' ')} %%)`);
  if (!codes.some((c) => c === 'S' || c === 's') && !template.includes('{segment}')) {
    throw new FileTemplateError('the file name template must contain %S, %s or {segment}, or every segment would get the same name');
  }
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/**
 * The relative path of a segment's file: strftime-style codes in local time (what people expect to see in a folder,
 * and what ffmpeg's own -strftime gives), {camera}, {segment}. Each folder level is cleaned as object keys are, and
 * no level may start with "." (hidden files, and the recorder's own state folder). Always ends in ".mp4".
 */
export function renderFileName(template: string, f: { camera: string; at: Date; segment: number }): string {
  const d = f.at;
  const day0 = new Date(d.getFullYear(), 0, 1);
  const yday = Math.floor((new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() - day0.getTime()) / 86_400_000) + 1;
  const codes: Record<string, string> = {
    Y: String(d.getFullYear()),
    m: pad(d.getMonth() + 1),
    d: pad(d.getDate()),
    H: pad(d.getHours()),
    M: pad(d.getMinutes()),
    S: pad(d.getSeconds()),
    y: pad(d.getFullYear() % 100),
    j: pad(yday, 3),
    s: String(Math.floor(d.getTime() / 1000)),
    F: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    '%': '%',
  };
  let out = template.replace(/\{camera\}/g, f.camera).replace(/\{segment\}/g, String(f.segment));
  out = out.replace(/%(.)/g, (m, c: string) => codes[c] ?? m);
  const levels = out
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .map((s) => sanitizeSegment(s === '..' ? '_' : s).replace(/^\./, '_'));
  let name = levels.join('/');
  if (name === '') name = 'segment';
  if (!/\.mp4$/i.test(name)) name += '.mp4';
  return name;
}
