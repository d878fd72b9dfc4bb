/** Parsing and validation of configuration values (durations, sizes, ports, URLs). No I/O. */
import { PyedgeError } from './errors.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

function bad(key: string, value: string, expected: string): PyedgeError {
  return new PyedgeError('PYEDGE_CONFIG', `Invalid value for ${key}: '${value}'. Expected ${expected}.`, { key, value });
}

/** `250ms`, `30s`, `5m`, `1h`, or a bare number of seconds → milliseconds. */
export function parseDuration(key: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!m) throw bad(key, value, 'a duration such as 250ms, 30s, 5m or 1h');
  const unit = (m[2] ?? 's').toLowerCase();
  return Math.round(Number(m[1]) * DURATION_UNITS[unit]!);
}

/** `100MB`, `512k`, `1GiB` or a bare number of bytes → bytes. */
export function parseSize(key: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m?.[2]?.toLowerCase() ?? '';
  if (!m || !(unit in SIZE_UNITS)) throw bad(key, value, 'a size such as 100MB, 512KB or 1GB');
  return Math.floor(Number(m[1]) * SIZE_UNITS[unit]!);
}

/** A TCP port 0–65535 (0 picks a free one). */
export function parsePort(key: string, value: string): number {
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) > 65535) throw bad(key, value, 'a port number from 0 to 65535');
  return Number(value);
}

/** A positive integer. */
export function parsePositiveInt(key: string, value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw bad(key, value, 'a positive whole number');
  return Number(value);
}

/** An absolute http(s) URL, returned without a trailing slash. */
export function parseHttpUrl(key: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw bad(key, value, 'an absolute http:// or https:// URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(key, value, 'an absolute http:// or https:// URL');
  return u.toString().replace(/\/+$/, '');
}

/** Log levels pino understands. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(key: string, value: string): LogLevel {
  const v = value.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw bad(key, value, `one of ${LOG_LEVELS.join(', ')}`);
  return v as LogLevel;
}
