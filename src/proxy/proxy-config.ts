/** Configuration of `pyedge proxy`: defaults in one place, validated at start, then frozen. */
import { resolve } from 'node:path';
import { parseDuration, parseHttpUrl, parseLogLevel, parsePort, type LogLevel } from '../core/config.js';
import { PyedgeError } from '../core/errors.js';

/** Timeouts of one upstream request, in milliseconds. */
export interface Timeouts {
  /** From opening the socket to the TCP (or TLS) connection. */
  readonly connectMs: number;
  /** From sending the request to the response's headers. */
  readonly firstByteMs: number;
  /** Longest silence between two chunks of the body. */
  readonly idleMs: number;
}

/** Hedging: a second upstream is asked when the first has not answered within a learned delay. */
export interface HedgePolicy {
  /** Share of requests that may be hedged (0.1: one in ten). */
  readonly budget: number;
  /** Which percentile of recent first-byte latencies is the delay (0.95). */
  readonly percentile: number;
  /** The delay before enough latencies are known, and its bounds, in ms. */
  readonly initialDelayMs: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
}

/** Health: how failures move an upstream between healthy, degraded and down. */
export interface HealthPolicy {
  /** Consecutive failures that mark an upstream down. */
  readonly downAfter: number;
  /** First wait before a down upstream is tried again (ms); doubles per failed probe up to `maxBackoffMs`. */
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** Background probe period of healthy and degraded upstreams (ms; 0: no background probes). */
  readonly probeIntervalMs: number;
  /** How long a wrong answer (bad hash, bad signature, stale page) keeps an upstream degraded (ms). */
  readonly penaltyMs: number;
}

export type SignatureMode = 'auto' | 'require' | 'off';

export interface ProxyConfig {
  /** Index roots, each ending in `/simple/`. */
  readonly upstreams: readonly string[];
  readonly host: string;
  readonly port: number;
  /** Folder for files, pages and the pinned key; null keeps pages in memory and spools files to a temporary folder. */
  readonly cacheDir: string | null;
  readonly pageTimeouts: Timeouts;
  readonly fileTimeouts: Timeouts;
  readonly hedge: HedgePolicy;
  readonly health: HealthPolicy;
  /** auto: trust the first `/serverkey` an upstream publishes; require: `--server-key` or TOFU, refuse unsigned pages; off. */
  readonly signatures: SignatureMode;
  /** A PEM public key file to trust instead of trust-on-first-use. */
  readonly serverKeyFile: string | null;
  readonly logLevel: LogLevel;
}

/** Options as the CLI gives them. */
export interface ProxyOptions {
  readonly upstream?: readonly string[] | string | undefined;
  readonly host?: string | undefined;
  readonly port?: string | undefined;
  readonly cache?: string | undefined;
  readonly connectTimeout?: string | undefined;
  readonly firstByteTimeout?: string | undefined;
  readonly idleTimeout?: string | undefined;
  readonly fileFirstByteTimeout?: string | undefined;
  readonly hedgeBudget?: string | undefined;
  readonly hedgePercentile?: string | undefined;
  readonly hedgeDelay?: string | undefined;
  readonly probeInterval?: string | undefined;
  readonly downAfter?: string | undefined;
  readonly signatures?: string | undefined;
  readonly serverKey?: string | undefined;
  readonly logLevel?: string | undefined;
}

export const PROXY_DEFAULTS = {
  host: '127.0.0.1',
  port: '3141',
  connectTimeout: '250ms',
  firstByteTimeout: '800ms',
  idleTimeout: '600ms',
  fileFirstByteTimeout: '800ms',
  hedgeBudget: '0.1',
  hedgePercentile: '0.95',
  hedgeDelay: '100ms',
  probeInterval: '5s',
  downAfter: '2',
  signatures: 'auto',
  logLevel: 'info',
} as const;

function bad(key: string, value: string, expected: string): PyedgeError {
  return new PyedgeError('PYEDGE_CONFIG', `Invalid value for ${key}: '${value}'. Expected ${expected}.`, { key, value });
}

function fraction(key: string, value: string, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > max) throw bad(key, value, `a number from 0 to ${max}`);
  return n;
}

/** An index root: absolute http(s), with the trailing slash that makes relative links resolve under it. */
export function parseUpstream(value: string): string {
  const url = parseHttpUrl('--upstream', value.trim());
  if (!/\/simple$/.test(url)) throw bad('--upstream', value, 'an index root URL ending in /simple/ (for example http://host/simple/)');
  return `${url}/`;
}

function list(value: readonly string[] | string | undefined): string[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? [value] : value;
  return items.flatMap((v) => v.split(/[\s,]+/)).filter((v) => v !== '');
}

export function resolveProxyConfig(options: ProxyOptions): ProxyConfig {
  const o = { ...PROXY_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as typeof PROXY_DEFAULTS &
    ProxyOptions;
  const upstreams = [...new Set(list(options.upstream).map(parseUpstream))];
  if (upstreams.length === 0) {
    throw new PyedgeError('PYEDGE_CONFIG', 'Give at least one --upstream URL (an index root such as http://host/simple/).', { key: 'upstream' });
  }
  const signatures = o.signatures as string;
  if (signatures !== 'auto' && signatures !== 'require' && signatures !== 'off') throw bad('--signatures', signatures, 'auto, require or off');
  const connectMs = parseDuration('--connect-timeout', o.connectTimeout);
  const idleMs = parseDuration('--idle-timeout', o.idleTimeout);
  const firstByteMs = parseDuration('--first-byte-timeout', o.firstByteTimeout);
  const downAfter = Number(o.downAfter);
  if (!Number.isInteger(downAfter) || downAfter < 1) throw bad('--down-after', String(o.downAfter), 'a positive whole number');
  const hedgeDelay = parseDuration('--hedge-delay', o.hedgeDelay);
  return Object.freeze({
    upstreams: Object.freeze(upstreams),
    host: o.host,
    port: parsePort('--port', o.port),
    cacheDir: o.cache ? resolve(o.cache) : null,
    pageTimeouts: Object.freeze({ connectMs, firstByteMs, idleMs }),
    fileTimeouts: Object.freeze({ connectMs, firstByteMs: parseDuration('--file-first-byte-timeout', o.fileFirstByteTimeout), idleMs }),
    hedge: Object.freeze({
      budget: fraction('--hedge-budget', o.hedgeBudget, 1),
      percentile: fraction('--hedge-percentile', o.hedgePercentile, 1),
      initialDelayMs: hedgeDelay,
      minDelayMs: 5,
      maxDelayMs: Math.max(hedgeDelay, firstByteMs),
    }),
    health: Object.freeze({
      downAfter,
      backoffMs: 1000,
      maxBackoffMs: 60_000,
      probeIntervalMs: parseDuration('--probe-interval', o.probeInterval),
      penaltyMs: 5 * 60_000,
    }),
    signatures,
    serverKeyFile: o.serverKey ? resolve(o.serverKey) : null,
    logLevel: parseLogLevel('--log-level', o.logLevel),
  });
}
