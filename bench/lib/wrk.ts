/** Runs wrk and reads its report. */
import { runCommand } from './processes.js';

export const WRK = '/usr/bin/wrk';

/** What one wrk run measured. */
export interface WrkResult {
  readonly requests: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Non-2xx/3xx answers plus socket errors. */
  readonly errors: number;
  readonly raw: string;
}

export interface WrkOptions {
  readonly threads: number;
  readonly connections: number;
  readonly seconds: number;
  readonly headers?: Readonly<Record<string, string>>;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  if (unit === 'us') return v / 1000;
  if (unit === 'ms') return v;
  if (unit === 's') return v * 1000;
  if (unit === 'm') return v * 60_000;
  throw new Error(`wrk latency unit '${unit}' not understood`);
}

function latency(raw: string, pct: string): number {
  const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(raw);
  if (!m) throw new Error(`no ${pct}% latency in wrk output:\n${raw}`);
  return toMs(m[1]!, m[2]!);
}

/** `wrk -tT -cC -dDs --latency [-H …] url`, bounded to the duration plus 30 s. */
export async function runWrk(url: string, o: WrkOptions): Promise<WrkResult> {
  const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--latency'];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const r = await runCommand(WRK, args, (o.seconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`wrk failed (${r.code}):\n${r.stdout}${r.stderr}`);
  const raw = r.stdout;
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(raw);
  const total = /^\s*(\d+) requests in/m.exec(raw);
  if (!rps || !total) throw new Error(`wrk output not understood:\n${raw}`);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(raw)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  const socketErrors = sock ? sock.slice(1, 5).reduce((n, x) => n + Number(x), 0) : 0;
  return {
    requests: Number(total[1]),
    perSecond: Number(rps[1]),
    p50Ms: latency(raw, '50'),
    p99Ms: latency(raw, '99'),
    errors: non2xx + socketErrors,
    raw,
  };
}
