/** Counts file downloads in memory and adds them to the database in batches (PEP 381 local stats). */
import type { Logger } from 'pino';
import type { Database, DownloadCount } from '../db/database.js';

/** The client's product token (`pip/24.0` of pip's long User-Agent), or `unknown`. */
export function userAgentFamily(header: string | undefined): string {
  const token = (header ?? '').trim().split(/\s+/)[0] ?? '';
  // Keep CSV and HTML safe: no commas, quotes or control characters.
  const clean = token.replace(/[^A-Za-z0-9._/+-]/g, '').slice(0, 100);
  return clean === '' ? 'unknown' : clean;
}

export class DownloadCounter {
  private pending = new Map<string, DownloadCount>();

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {}

  record(project: string, filename: string, userAgent: string | undefined, now = new Date()): void {
    const day = now.toISOString().slice(0, 10);
    const ua = userAgentFamily(userAgent);
    const key = `${day}\0${filename}\0${ua}`;
    const have = this.pending.get(key);
    this.pending.set(key, { day, project, filename, userAgent: ua, count: (have?.count ?? 0) + 1 });
  }

  /** Write what was counted since the last flush. Counts are kept for the next try if the write fails. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.db.addDownloads([...batch.values()]);
    } catch (err) {
      this.log.warn({ err, entries: batch.size }, 'could not record download counts; will retry');
      for (const [key, c] of batch) {
        const have = this.pending.get(key);
        this.pending.set(key, { ...c, count: c.count + (have?.count ?? 0) });
      }
    }
  }
}
