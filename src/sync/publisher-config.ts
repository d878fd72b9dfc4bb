/** Configuration of `pyedge publish` and `pyedge verify`: defaults in one place, validated, then frozen. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseDuration, parseHttpUrl, parseLogLevel, parsePositiveInt, type LogLevel } from '../core/config.js';
import { PyedgeError } from '../core/errors.js';
import { resolveS3Settings, type S3Settings } from '../origin/origin-config.js';

export interface PublisherConfig {
  /** The origin's URL, without a trailing slash. */
  readonly source: string;
  /** A folder or `s3://BUCKET/PREFIX`. */
  readonly target: string;
  readonly watch: boolean;
  /** Full reconcile every this many milliseconds (with --watch). */
  readonly intervalMs: number;
  /** The tree's public URL (no trailing slash): JSON API file URLs point there. Null keeps the origin's. */
  readonly publicUrl: string | null;
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
  readonly publicUrl?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly concurrency?: string | undefined;
  readonly logLevel?: string | undefined;
  readonly s3ForcePathStyle?: string | undefined;
  readonly s3Checksums?: string | undefined;
}

export const PUBLISHER_DEFAULTS = {
  interval: '300s',
  concurrency: '8',
  logLevel: 'info',
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

/** Validate (naming the bad option) and fill in defaults. `needSource`: false for a plain `verify`. */
export function resolvePublisherConfig(options: PublisherOptions, needSource = true): PublisherConfig {
  const target = required(options.target, '--target', 'the static tree, a folder or s3://BUCKET/PREFIX');
  const source = needSource ? parseHttpUrl('--source', required(options.source, '--source', "the origin's URL, e.g. http://127.0.0.1:8080")) : '';
  const intervalMs = parseDuration('--interval', options.interval ?? PUBLISHER_DEFAULTS.interval);
  if (intervalMs < 1000) throw new PyedgeError('PYEDGE_CONFIG', 'Invalid value for --interval: it must be at least 1 second.', { key: 'interval' });
  return Object.freeze({
    source,
    target: /^s3:/i.test(target) ? target : resolve(target),
    watch: options.watch === true,
    intervalMs,
    publicUrl: options.publicUrl ? parseHttpUrl('--public-url', options.publicUrl) : null,
    keyFile: options.keyFile ? resolve(options.keyFile) : defaultPublisherKeyFile(),
    concurrency: parsePositiveInt('--concurrency', options.concurrency ?? PUBLISHER_DEFAULTS.concurrency),
    logLevel: parseLogLevel('--log-level', options.logLevel ?? PUBLISHER_DEFAULTS.logLevel),
    s3: resolveS3Settings(options),
  });
}
