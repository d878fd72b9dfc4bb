/** Configuration of the origin server: defaults in one place, validated, then frozen. */
import { join, resolve } from 'node:path';
import { parseHttpUrl, parseLogLevel, parsePort, parsePositiveInt, parseSize, parseDuration, type LogLevel } from '../core/config.js';
import { PyedgeError } from '../core/errors.js';

export interface OriginConfig {
  /** Folder for the embedded database, blobs and temporary upload files. */
  readonly dataDir: string;
  /** `sqlite:PATH` or `postgres://…`. */
  readonly db: string;
  /** A folder or `s3://BUCKET/PREFIX`. */
  readonly blobs: string;
  readonly host: string;
  readonly port: number;
  /** The URL users reach the origin at (printed, and used for absolute links); derived when not given. */
  readonly publicUrl: string | null;
  /** Largest accepted upload, in bytes. */
  readonly maxUploadSize: number;
  /** Cache-Control max-age of Simple pages, in seconds. */
  readonly pageMaxAge: number;
  /** How long SIGTERM waits for in-flight requests, in milliseconds. */
  readonly shutdownGrace: number;
  readonly logLevel: LogLevel;
  /** The ed25519 key that signs project pages (created on first start when missing). */
  readonly keyFile: string;
  /** Most change-feed clients (long-poll and SSE) waiting at once. */
  readonly feedMaxClients: number;
  /** S3 settings a `s3://` URL cannot carry. */
  readonly s3: S3Settings;
}

/** How to talk to an S3-compatible store; the rest comes from the usual AWS variables. */
export interface S3Settings {
  readonly forcePathStyle: boolean;
  /** `WHEN_REQUIRED` suits s3rver, MinIO, Ceph and most stores; AWS also takes `WHEN_SUPPORTED`. */
  readonly checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
}

/** Options as the CLI or a caller gives them: strings, all optional but `data`. */
export interface OriginOptions {
  readonly data?: string | undefined;
  readonly db?: string | undefined;
  readonly blobs?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: string | number | undefined;
  readonly publicUrl?: string | undefined;
  readonly maxUploadSize?: string | undefined;
  readonly pageMaxAge?: string | undefined;
  readonly shutdownGrace?: string | undefined;
  readonly logLevel?: string | undefined;
  readonly feedMaxClients?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly s3ForcePathStyle?: string | undefined;
  readonly s3Checksums?: string | undefined;
}

export const ORIGIN_DEFAULTS = {
  host: '127.0.0.1',
  port: '8080',
  maxUploadSize: '100MB',
  pageMaxAge: '60s',
  shutdownGrace: '30s',
  logLevel: 'info',
  feedMaxClients: '1000',
  s3ForcePathStyle: 'true',
  s3Checksums: 'WHEN_REQUIRED',
} as const;

/** Parse the S3 options shared by every command that can write to or read from a bucket. */
export function resolveS3Settings(options: { s3ForcePathStyle?: string | undefined; s3Checksums?: string | undefined }): S3Settings {
  const style = (options.s3ForcePathStyle ?? ORIGIN_DEFAULTS.s3ForcePathStyle).toLowerCase();
  if (style !== 'true' && style !== 'false') {
    throw new PyedgeError('PYEDGE_CONFIG', `Invalid value for --s3-force-path-style: '${style}'. Expected true or false.`, {
      key: 's3ForcePathStyle',
    });
  }
  const checksums = (options.s3Checksums ?? ORIGIN_DEFAULTS.s3Checksums).toUpperCase();
  if (checksums !== 'WHEN_REQUIRED' && checksums !== 'WHEN_SUPPORTED') {
    throw new PyedgeError('PYEDGE_CONFIG', `Invalid value for --s3-checksums: '${checksums}'. Expected WHEN_REQUIRED or WHEN_SUPPORTED.`, {
      key: 's3Checksums',
    });
  }
  return { forcePathStyle: style === 'true', checksums };
}

/** Validate options (naming the bad one) and fill in defaults. */
export function resolveOriginConfig(options: OriginOptions): OriginConfig {
  if (!options.data) {
    throw new PyedgeError('PYEDGE_CONFIG', 'Missing --data DIR (or PYEDGE_DATA): the folder where the index keeps its data.', {
      key: 'data',
    });
  }
  const dataDir = resolve(options.data);
  const db = options.db ?? `sqlite:${join(dataDir, 'index.db')}`;
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(db)) {
    throw new PyedgeError('PYEDGE_CONFIG', `Invalid value for --db: '${db}'. Expected sqlite:PATH or postgres://USER@HOST:PORT/DB.`, {
      key: 'db',
    });
  }
  const config: OriginConfig = {
    dataDir,
    db,
    blobs: options.blobs ?? join(dataDir, 'blobs'),
    host: options.host ?? ORIGIN_DEFAULTS.host,
    port: parsePort('--port', String(options.port ?? ORIGIN_DEFAULTS.port)),
    publicUrl: options.publicUrl ? parseHttpUrl('--public-url', options.publicUrl) : null,
    maxUploadSize: parseSize('--max-upload-size', options.maxUploadSize ?? ORIGIN_DEFAULTS.maxUploadSize),
    pageMaxAge: Math.round(parseDuration('--page-max-age', options.pageMaxAge ?? ORIGIN_DEFAULTS.pageMaxAge) / 1000),
    shutdownGrace: parseDuration('--shutdown-grace', options.shutdownGrace ?? ORIGIN_DEFAULTS.shutdownGrace),
    logLevel: parseLogLevel('--log-level', options.logLevel ?? ORIGIN_DEFAULTS.logLevel),
    keyFile: options.keyFile ? resolve(options.keyFile) : join(dataDir, 'keys', 'server-key.pem'),
    feedMaxClients: parsePositiveInt('--feed-max-clients', options.feedMaxClients ?? ORIGIN_DEFAULTS.feedMaxClients),
    s3: resolveS3Settings(options),
  };
  if (config.maxUploadSize < 1) {
    throw new PyedgeError('PYEDGE_CONFIG', 'Invalid value for --max-upload-size: it must be at least 1 byte.', { key: 'maxUploadSize' });
  }
  return Object.freeze(config);
}

/** The S3 settings of a config in the form the blob store factory takes. */
export function s3Overrides(config: Pick<OriginConfig, 's3'>): {
  forcePathStyle: boolean;
  requestChecksumCalculation: S3Settings['checksums'];
  responseChecksumValidation: S3Settings['checksums'];
} {
  return {
    forcePathStyle: config.s3.forcePathStyle,
    requestChecksumCalculation: config.s3.checksums,
    responseChecksumValidation: config.s3.checksums,
  };
}
