/** Configuration of `pyedge publish` and `pyedge verify`: defaults in one place, validated, then frozen. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseDuration, parseHttpUrl, parseLogLevel, parsePort, parsePositiveInt, type LogLevel } from '../core/config.js';
import { PyedgeError } from '../core/errors.js';
import { resolveS3Settings, type S3Settings } from '../origin/origin-config.js';
import { PURGE_MODES, type PurgeMode } from './purge.js';

export interface PublisherConfig {
  /** The origin's URL, without a trailing slash. */
  readonly source: string;
  /** A folder or `s3://BUCKET/PREFIX`. */
  readonly target: string;
  readonly watch: boolean;
  /** Full reconcile every this many milliseconds (with --watch). */
  readonly intervalMs: number;
  /** While the project list stays the same, the root's per-project serials are refreshed at most this often (ms). */
  readonly rootIntervalMs: number;
  /** Where `--watch` serves Prometheus metrics (`/metrics`), or null for nowhere. */
  readonly metrics: { readonly host: string; readonly port: number } | null;
  /** The tree's public URL (no trailing slash): JSON API file URLs point there. Null keeps the origin's. */
  readonly publicUrl: string | null;
  /** Caches to purge after each batch (base URLs, no trailing slash). */
  readonly purge: readonly string[];
  /** By surrogate key (Varnish with deploy/varnish/default.vcl) or by URL. */
  readonly purgeMode: PurgeMode;
  /** The publisher's own ed25519 key (created on first use). */
  readonly keyFile: string;
  /** Pages fetched and files copied at once. */
  readonly concurrency: number;
  readonly logLevel: LogLevel;
  readonly s3: S3Settings;
}

/** Options as the CLI gives them. */
export interface PublisherOptions {
  readonly source?: string | undefined;
  readonly target?: string | undefined;
  readonly watch?: boolean | undefined;
  readonly interval?: string | undefined;
  readonly rootInterval?: string | undefined;
  readonly metrics?: string | undefined;
  readonly publicUrl?: string | undefined;
  /** Repeatable: one URL each time (the CLI splits a list given by PYEDGE_PURGE). */
  readonly purge?: readonly string[] | string | undefined;
  readonly purgeMode?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly concurrency?: string | undefined;
  readonly logLevel?: string | undefined;
  readonly s3ForcePathStyle?: string | undefined;
  readonly s3Checksums?: string | undefined;
}

export const PUBLISHER_DEFAULTS = {
  interval: '300s',
  rootInterval: '30s',
  concurrency: '8',
  logLevel: 'info',
  purgeMode: 'keys',
} as const;

/**
 * Where the publisher keeps its key unless told: `~/.pyedge/keys/publisher-key.pem`.
 * Never inside the tree (it would be served), and apart from any origin's key.
 */
export function defaultPublisherKeyFile(): string {
  return join(homedir(), '.pyedge', 'keys', 'publisher-key.pem');
}

function required(value: string | undefined, flag: string, what: string): string {
  if (!value) throw new PyedgeError('PYEDGE_CONFIG', `Missing ${flag} (or PYEDGE_${flag.slice(2).replace(/-/g, '_').toUpperCase()}): ${what}.`, { key: flag });
  return value;
}

/** `HOST:PORT`, `[IPv6]:PORT`, `:PORT` or `PORT`; the host is loopback unless given. */
export function parseListenAddress(key: string, value: string): { host: string; port: number } {
  const m = /^\s*(?:(?:\[([^\]]+)\]|([^:\s]*)):)?(\d+)\s*$/.exec(value);
  if (!m) throw new PyedgeError('PYEDGE_CONFIG', `Invalid value for ${key}: '${value}'. Expected HOST:PORT, e.g. 127.0.0.1:9464.`, { key, value });
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: parsePort(key, m[3]!) };
}

function parsePurgeMode(value: string): PurgeMode {
  const mode = PURGE_MODES.find((m) => m === value.toLowerCase());
  if (mode === undefined) throw new PyedgeError('PYEDGE_CONFIG', `Invalid value for --purge-mode: '${value}'. Expected ${PURGE_MODES.join(' or ')}.`, { key: 'purgeMode' });
  return mode;
}

/** Validate (naming the bad option) and fill in defaults. `needSource`: false for a plain `verify`. */
export function resolvePublisherConfig(options: PublisherOptions, needSource = true): PublisherConfig {
  const target = required(options.target, '--target', 'the static tree, a folder or s3://BUCKET/PREFIX');
  const source = needSource ? parseHttpUrl('--source', required(options.source, '--source', "the origin's URL, e.g. http://127.0.0.1:8080")) : '';
  const intervalMs = parseDuration('--interval', options.interval ?? PUBLISHER_DEFAULTS.interval);
  if (intervalMs < 1000) throw new PyedgeError('PYEDGE_CONFIG', 'Invalid value for --interval: it must be at least 1 second.', { key: 'interval' });
  const metrics = options.metrics ? parseListenAddress('--metrics', options.metrics) : null;
  if (metrics !== null && options.watch !== true) throw new PyedgeError('PYEDGE_CONFIG', '--metrics serves a running publisher: give --watch too.', { key: 'metrics' });
  return Object.freeze({
    source,
    target: /^s3:/i.test(target) ? target : resolve(target),
    watch: options.watch === true,
    intervalMs,
    rootIntervalMs: parseDuration('--root-interval', options.rootInterval ?? PUBLISHER_DEFAULTS.rootInterval),
    metrics,
    publicUrl: options.publicUrl ? parseHttpUrl('--public-url', options.publicUrl) : null,
    purge: Object.freeze([options.purge ?? []].flat().map((url) => parseHttpUrl('--purge', url))),
    purgeMode: parsePurgeMode(options.purgeMode ?? PUBLISHER_DEFAULTS.purgeMode),
    keyFile: options.keyFile ? resolve(options.keyFile) : defaultPublisherKeyFile(),
    concurrency: parsePositiveInt('--concurrency', options.concurrency ?? PUBLISHER_DEFAULTS.concurrency),
    logLevel: parseLogLevel('--log-level', options.logLevel ?? PUBLISHER_DEFAULTS.logLevel),
    s3: resolveS3Settings(options),
  });
}
