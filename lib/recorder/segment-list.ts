import fs from 'fs';

/** One line of ffmpeg's CSV segment list: a segment that is closed, with its start and end in stream seconds. */
export interface ListEntry {
  file: string;
  start: number;
  end: number;
}

/**
 * Parses one line of `-segment_list_type csv`: `name,start,end`, the name quoted the CSV way ("a,b" with "" for ")
 * when it holds a comma, quote or newline. Returns undefined for anything else, such as a torn last line.
 */
export function parseListLine(line: string): ListEntry | undefined {
  const s = line.replace(/\r$/, '');
  let file: string;
  let rest: string;
  if (s.startsWith('"')) {
    let i = 1;
    file = '';
    for (;;) {
      const q = s.indexOf('"', i);
      if (q < 0) return undefined;
      file += s.slice(i, q);
      if (s[q + 1] === '"') {
        file += '"';
        i = q + 2;
        continue;
      }
      rest = s.slice(q + 1);
      break;
    }
    if (!rest.startsWith(',')) return undefined;
    rest = rest.slice(1);
  } else {
    const comma = s.indexOf(',');
    if (comma <= 0) return undefined;
    file = s.slice(0, comma);
    rest = s.slice(comma + 1);
  }
  const parts = rest.split(',');
  if (parts.length !== 2) return undefined;
  const start = Number(parts[0]);
  const end = Number(parts[1]);
  if (file === '' || parts[0] === '' || parts[1] === '' || !Number.isFinite(start) || !Number.isFinite(end) || end < start) return undefined;
  return { file, start, end };
}

/** Every complete entry of a list's text; a last line without its newline is not complete yet. */
export function parseList(text: string): ListEntry[] {
  const lines = text.split('\n');
  lines.pop();
  return lines.map(parseListLine).filter((e): e is ListEntry => e !== undefined);
}

/**
 * Follows a segment list that ffmpeg appends to: each read returns the entries completed since the last one. Only
 * whole lines count, so an entry is never taken while ffmpeg is halfway through writing it. The list is held open
 * from the first read that finds it until close(): ffmpeg only ever appends to it, so a read is one read at the
 * offset, whether it finds something or not. (Were the list ever rewritten or replaced, reads would stop finding
 * entries; the end of the run reads the whole list again and hands them on.)
 */
export class ListTail {
  private offset = 0;
  private partial = '';
  private fh: fs.promises.FileHandle | undefined;
  private closed = false;
  /** Reads go here: a segment's line is some 40 bytes. */
  private readonly buf = Buffer.allocUnsafe(4096);

  constructor(readonly file: string) {}

  async read(): Promise<ListEntry[]> {
    if (this.closed) return [];
    if (!this.fh) {
      try {
        this.fh = await fs.promises.open(this.file, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
    }
    const chunks: Buffer[] = [];
    for (;;) {
      const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, this.offset);
      if (bytesRead > 0) chunks.push(Buffer.from(this.buf.subarray(0, bytesRead)));
      this.offset += bytesRead;
      if (bytesRead < this.buf.length) break;
    }
    if (chunks.length === 0) return [];
    const text = this.partial + Buffer.concat(chunks).toString('utf8');
    const cut = text.lastIndexOf('\n');
    this.partial = cut < 0 ? text : text.slice(cut + 1);
    return cut < 0 ? [] : parseList(text.slice(0, cut + 1));
  }

  /** Lets go of the list; reads after this find nothing. */
  async close(): Promise<void> {
    this.closed = true;
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}
