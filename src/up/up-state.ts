/**
 * What `pyedge up` remembers between runs (`pyedge-up.json` in its data folder): the ports it
 * listened on, so printed URLs and a user's pip config stay valid, and the first user's token.
 * Readable by its owner only, since it holds a token.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PyedgeError } from '../core/errors.js';
import type { StackPart } from './up-config.js';

export interface UpState {
  readonly ports: Partial<Record<StackPart, number>>;
  /** The user made on first run, and a token that uploads as them. */
  readonly user: string | null;
  readonly token: string | null;
}

export const EMPTY_UP_STATE: UpState = Object.freeze({ ports: {}, user: null, token: null });

function isPort(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) > 0 && (v as number) <= 65535;
}

/** The state, or the empty state when there is no file yet. A file that is not ours is an error, not a reset. */
export async function readUpState(path: string): Promise<UpState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_UP_STATE;
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PyedgeError('PYEDGE_CONFIG', `${path} is not valid JSON; fix or remove it (a new token is then issued).`, { path }, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null) {
    throw new PyedgeError('PYEDGE_CONFIG', `${path} does not hold pyedge up's state; fix or remove it.`, { path });
  }
  const d = doc as Record<string, unknown>;
  const ports: Partial<Record<StackPart, number>> = {};
  const raw = (typeof d.ports === 'object' && d.ports !== null ? d.ports : {}) as Record<string, unknown>;
  for (const part of ['origin', 'edge', 'proxy'] as const) if (isPort(raw[part])) ports[part] = raw[part];
  return {
    ports,
    user: typeof d.user === 'string' ? d.user : null,
    token: typeof d.token === 'string' ? d.token : null,
  };
}

/** Replace the state in one rename, flushed first, mode 0600. */
export async function writeUpState(path: string, state: UpState): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(state, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}
