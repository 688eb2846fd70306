import { AppendLog } from '../util/append-log';

/** A closed segment, as it was handed on: what its message said, and where it came from. */
export interface ClosedRecord {
  t: 'closed';
  /** ffmpeg's numbered name for it, without ".mp4": `<run>-000003`. Unique for ever. */
  id: string;
  run: string;
  /** Its file below the recordings folder, with "/". */
  file: string;
  bytes: number;
  sha256: string;
  durationS: number;
  codec: string;
  width: number;
  height: number;
  capturedAt: string;
  /** Where the segment starts in its run's stream, in seconds (the run's clock is its start time minus this). */
  listStart: number;
  /** Counts every segment this recorder has made, across runs and restarts. */
  n: number;
  requestedS: number;
  partial?: boolean;
  gapBeforeS?: number;
  /** Compacted journals carry the state in the record itself. */
  state?: 'sent' | 'uploaded';
}

export type JournalRecord =
  | ClosedRecord
  | { t: 'sent'; id: string }
  | { t: 'uploaded'; id: string }
  | { t: 'deleted'; id: string; why: 'budget' | 'dropped' | 'gone' }
  | { t: 'quarantined'; id: string; file: string }
  | { t: 'meta'; lastN: number; lastEndMs?: number };

/**
 * The recorder's memory of every segment it handed on, one JSON line per event, appended and fsynced before the
 * recorder acts on it (see AppendLog).
 */
export class Journal extends AppendLog<JournalRecord> {
  private constructor(file: string) {
    // Every record is synced before the recorder acts on it: each append is one synced write.
    super(file, { syncEveryWrite: true });
  }

  /** Opens the journal and returns its records, the torn last line (if any) removed. */
  static async open(file: string): Promise<{ journal: Journal; records: JournalRecord[] }> {
    const journal = new Journal(file);
    const records = await journal.load((r): r is JournalRecord => r !== null && typeof r === 'object' && typeof (r as { t?: unknown }).t === 'string');
    return { journal, records };
  }
}
