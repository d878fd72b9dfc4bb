/** Configuration of `pyedge edge`: defaults in one place, validated (naming the bad option), then frozen. */
import { parseHttpUrl, parseLogLevel, parsePort, type LogLevel } from '../core/config.js';
import { PyedgeError } from '../core/errors.js';
import { resolveS3Settings, type S3Settings } from '../origin/origin-config.js';

export interface EdgeConfig {
  /** The tree: a folder or `s3://BUCKET/PREFIX`; null for a pure redirector. */
  readonly root: string | null;
  readonly host: string;
  readonly port: number;
  /** The CDN base URL redirect mode sends to (no trailing slash), or null. */
  readonly redirectTo: string | null;
  /** Path prefixes (no leading `/`) answered with a redirect in redirect mode; `''` is every path. */
  readonly redirectPaths: readonly string[];
  readonly logLevel: LogLevel;
  readonly s3: S3Settings;
}

export interface EdgeOptions {
  readonly root?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: string | number | undefined;
  readonly redirectTo?: string | undefined;
  readonly redirectPaths?: string | readonly string[] | undefined;
  readonly logLevel?: string | undefined;
  readonly s3ForcePathStyle?: string | undefined;
  readonly s3Checksums?: string | undefined;
}

export const EDGE_DEFAULTS = {
  host: '127.0.0.1',
  port: '8081',
  /** File downloads: what the 2010 proposal's redirection servers sent to the CDN. */
  redirectPaths: 'packages/',
  logLevel: 'info',
} as const;

/** `packages/,simple/` or a list of them → prefixes without a leading `/`; `/` alone (or `*`) is every path. */
export function parseRedirectPaths(value: string | readonly string[]): string[] {
  const items = (typeof value === 'string' ? [value] : value).flatMap((v) => v.split(/[\s,]+/)).filter((v) => v !== '');
  if (items.length === 0) {
    throw new PyedgeError('PYEDGE_CONFIG', 'Invalid value for --redirect-paths: it names no path. Expected prefixes such as packages/ (or / for every path).', { key: 'redirectPaths' });
  }
  return items.map((item) => {
    const prefix = item === '*' ? '' : item.replace(/^\/+/, '');
    if (/[\\?#]|(^|\/)\.\.?(\/|$)/.test(prefix)) {
      throw new PyedgeError('PYEDGE_CONFIG', `Invalid value for --redirect-paths: '${item}'. Expected path prefixes such as packages/.`, { key: 'redirectPaths' });
    }
    return prefix;
  });
}

export function resolveEdgeConfig(options: EdgeOptions): EdgeConfig {
  const redirectTo = options.redirectTo ? parseHttpUrl('--redirect-to', options.redirectTo) : null;
  const root = options.root?.trim() ? options.root.trim() : null;
  if (root === null && redirectTo === null) {
    throw new PyedgeError('PYEDGE_CONFIG', 'Missing --root DIR|s3://BUCKET/PREFIX (or PYEDGE_ROOT): the static tree to serve. Only a pure redirector (--redirect-to URL) runs without one.', {
      key: 'root',
    });
  }
  const redirectPaths = root === null ? [''] : parseRedirectPaths(options.redirectPaths ?? EDGE_DEFAULTS.redirectPaths);
  if (root === null && options.redirectPaths !== undefined && options.redirectPaths !== EDGE_DEFAULTS.redirectPaths) {
    throw new PyedgeError('PYEDGE_CONFIG', 'Invalid use of --redirect-paths without --root: a redirector without a tree redirects every path.', { key: 'redirectPaths' });
  }
  return Object.freeze({
    root,
    host: options.host ?? EDGE_DEFAULTS.host,
    port: parsePort('--port', String(options.port ?? EDGE_DEFAULTS.port)),
    redirectTo,
    redirectPaths: Object.freeze(redirectPaths),
    logLevel: parseLogLevel('--log-level', options.logLevel ?? EDGE_DEFAULTS.logLevel),
    s3: resolveS3Settings(options),
  });
}
