/**
 * Counts a running process's system calls (all its threads) while a benchmark
 * measures it: `strace -f -c -p PID`, stopped with SIGINT so it detaches and
 * writes its summary. strace slows the process down, so a run that counts
 * calls is not one whose rate is worth recording.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';

/** strace attached to a process; `stop()` detaches and returns calls per system call name. */
export interface SyscallCounter {
  stop(): Promise<Map<string, number>>;
}

/** Attach to `pid`, writing strace's summary to `outFile`. Resolves once strace has attached. */
export async function countSyscalls(pid: number, outFile: string): Promise<SyscallCounter> {
  const child = spawn('strace', ['-f', '-c', '-p', String(pid), '-o', outFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`strace did not attach in time: ${err}`)), 10_000);
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/attached/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`strace exited before attaching: ${err}`));
    });
  });
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      return parseSummary(await readFile(outFile, 'utf8'));
    },
  };
}

/** The `calls` column of `strace -c` output, by system call name. */
export function parseSummary(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    // % time, seconds, usecs/call, calls, [errors], syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (m && m[2] !== 'total') counts.set(m[2]!, Number(m[1]));
  }
  return counts;
}
