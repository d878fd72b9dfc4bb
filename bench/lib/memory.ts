/** Resident memory of another process, from Linux's /proc/<pid>/status (NaN elsewhere). */
import { readFile } from 'node:fs/promises';

/** Resident set sizes in MiB. */
export interface Rss {
  /** Now (VmRSS). */
  readonly rssMiB: number;
  /** The peak since the process started (VmHWM, kept by the kernel). */
  readonly peakMiB: number;
}

function field(status: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function processRss(pid: number | undefined): Promise<Rss> {
  if (pid === undefined) return { rssMiB: NaN, peakMiB: NaN };
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return { rssMiB: field(status, 'VmRSS'), peakMiB: field(status, 'VmHWM') };
  } catch {
    return { rssMiB: NaN, peakMiB: NaN };
  }
}

/**
 * Polls a process's memory every `intervalMs`, so the peak is known even after the
 * process exited (VmHWM can no longer be read then).
 */
export class RssWatcher {
  private peak = NaN;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pid: number | undefined,
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    const poll = (): void => {
      void processRss(this.pid).then((r) => {
        const p = Math.max(r.peakMiB, r.rssMiB);
        if (Number.isFinite(p)) this.peak = Number.isFinite(this.peak) ? Math.max(this.peak, p) : p;
      });
    };
    poll();
    this.timer = setInterval(poll, this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** The largest VmHWM seen so far, in MiB. */
  get peakMiB(): number {
    return this.peak;
  }

  /** Read once more, stop polling, and return the peak. */
  async stop(): Promise<number> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const r = await processRss(this.pid);
    const p = Math.max(r.peakMiB, r.rssMiB);
    if (Number.isFinite(p)) this.peak = Number.isFinite(this.peak) ? Math.max(this.peak, p) : p;
    return this.peak;
  }
}
