/** Configuration of `pyedge up`: defaults in one place, validated (naming the bad option), then frozen. */
import { join, resolve } from 'node:path';
import { parseLogLevel, parsePort, type LogLevel } from '../core/config.js';

export interface UpConfig {
  /** Everything the stack keeps: the origin's data, the tree, the publisher's key, the remembered ports and token. */
  readonly dataDir: string;
  readonly host: string;
  /** A port asked for on the command line (it must be free), or null: the one used last time if free, else any. */
  readonly ports: Readonly<Record<StackPart, number | null>>;
  readonly logLevel: LogLevel;
}

export type StackPart = 'origin' | 'edge' | 'proxy';

export interface UpOptions {
  readonly data?: string | undefined;
  readonly host?: string | undefined;
  readonly originPort?: string | undefined;
  readonly edgePort?: string | undefined;
  readonly proxyPort?: string | undefined;
  readonly logLevel?: string | undefined;
}

export const UP_DEFAULTS = {
  data: 'pyedge-data',
  host: '127.0.0.1',
  /** The servers log requests at info; a terminal running the whole stack wants only what goes wrong. */
  logLevel: 'warn',
} as const;

/** Where each part keeps its state inside the data folder. */
export interface UpLayout {
  readonly originData: string;
  readonly tree: string;
  readonly publisherKey: string;
  readonly proxyCache: string;
  readonly stateFile: string;
}

export function upLayout(dataDir: string): UpLayout {
  return {
    originData: join(dataDir, 'origin'),
    tree: join(dataDir, 'tree'),
    publisherKey: join(dataDir, 'keys', 'publisher-key.pem'),
    proxyCache: join(dataDir, 'proxy-cache'),
    stateFile: join(dataDir, 'pyedge-up.json'),
  };
}

function port(flag: string, value: string | undefined): number | null {
  return value === undefined || value === '' ? null : parsePort(flag, value);
}

export function resolveUpConfig(options: UpOptions): UpConfig {
  return Object.freeze({
    dataDir: resolve(options.data ?? UP_DEFAULTS.data),
    host: options.host ?? UP_DEFAULTS.host,
    ports: Object.freeze({
      origin: port('--origin-port', options.originPort),
      edge: port('--edge-port', options.edgePort),
      proxy: port('--proxy-port', options.proxyPort),
    }),
    logLevel: parseLogLevel('--log-level', options.logLevel ?? UP_DEFAULTS.logLevel),
  });
}
