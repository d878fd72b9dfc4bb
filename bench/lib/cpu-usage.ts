/** CPU time of another process and of the whole machine, from Linux's /proc (null elsewhere). */
import { readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** User and system CPU milliseconds a process has used so far, in all its threads and in its main thread. */
export interface ProcessCpu {
  readonly userMs: number;
  readonly systemMs: number;
  /** The main thread alone (where a node program's JavaScript runs). */
  readonly mainMs: number;
}

async function statTimes(path: string): Promise<[number, number]> {
  const stat = await readFile(path, 'utf8');
  // Fields after the command name (which may hold spaces) start at "state"; utime and stime are the 12th and 13th of them.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [(Number(fields[11]) * 1000) / TICKS_PER_SECOND, (Number(fields[12]) * 1000) / TICKS_PER_SECOND];
}

export async function processCpu(pid: number | undefined): Promise<ProcessCpu | null> {
  if (pid === undefined) return null;
  try {
    const [userMs, systemMs] = await statTimes(`/proc/${pid}/stat`);
    const [mainUser, mainSystem] = await statTimes(`/proc/${pid}/task/${pid}/stat`);
    return { userMs, systemMs, mainMs: mainUser + mainSystem };
  } catch {
    return null;
  }
}

/** Busy and total jiffies of all CPUs so far. */
export interface MachineCpu {
  readonly busy: number;
  readonly total: number;
}

export async function machineCpu(): Promise<MachineCpu | null> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    // idle + iowait are the not-busy columns.
    return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
  } catch {
    return null;
  }
}
