/**
 * The state object (`pyedge-state.json`), written last in every batch: the
 * serial the tree's pages are at, where they came from, and how far the root
 * index's per-project serials lag behind them (the JSON root is refreshed at
 * most every `--root-interval` while the project list stays the same).
 */
import { PyedgeError } from '../core/errors.js';

export const TREE_STATE_FORMAT = 'pyedge-tree-v1';

export interface TreeState {
  readonly format: typeof TREE_STATE_FORMAT;
  /** Every change up to this serial is in the tree's pages. */
  readonly serial: number;
  /**
   * The serial the root index (its JSON `meta._last-serial`) was written at:
   * `serial` or older. It lists the same projects as the source at `serial`;
   * only its per-project `_last-serial` values may be older.
   */
  readonly rootSerial: number;
  /**
   * The projects whose pages are newer than their entry in the root index,
   * with the serial of their pages (empty when the root is at `serial`).
   */
  readonly newer: Readonly<Record<string, number>>;
  /** When the batch that wrote it finished (ISO 8601). */
  readonly time: string;
  /** The source's URL. */
  readonly source: string;
  /** Id of the key that signed the pages (see core/signing.ts keyId). */
  readonly key: string;
  /** The source's `rendering` (see SyncSource): e.g. where JSON API file URLs point. */
  readonly rendering: string;
  /** Projects in the root index. */
  readonly projects: number;
}

/** Serials of a `newer` map that are numbers; anything else is dropped (the project is then fetched again). */
function parseNewer(value: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [name, serial] of Object.entries(value)) if (typeof serial === 'number') out[name] = serial;
  return out;
}

export function serializeTreeState(state: TreeState): Buffer {
  return Buffer.from(JSON.stringify(state, null, 2) + '\n');
}

/** Parses the state object; PYEDGE_STORAGE when it is not one. */
export function parseTreeState(bytes: Uint8Array): TreeState {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    value = null;
  }
  const s = value as Partial<TreeState> | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    s.format !== TREE_STATE_FORMAT ||
    typeof s.serial !== 'number' ||
    typeof s.source !== 'string' ||
    typeof s.key !== 'string'
  ) {
    throw new PyedgeError('PYEDGE_STORAGE', `The tree's state object is not a ${TREE_STATE_FORMAT} document; run 'pyedge verify --repair'.`);
  }
  return {
    format: TREE_STATE_FORMAT,
    serial: s.serial,
    // A state written before the root could lag had its root at its serial.
    rootSerial: typeof s.rootSerial === 'number' ? s.rootSerial : s.serial,
    newer: parseNewer(s.newer),
    time: String(s.time),
    source: s.source,
    key: s.key,
    rendering: String(s.rendering ?? ''),
    projects: Number(s.projects ?? 0),
  };
}

/** PEP 381's `last-modified` line for a change time, in UTC: `20260131T12:34:56\n` (as the origin serves it). */
export function lastModifiedText(iso: string | null): string {
  const d = iso === null ? new Date(0) : new Date(iso);
  const t = Number.isNaN(d.getTime()) ? new Date(0) : d;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${t.getUTCFullYear()}${p(t.getUTCMonth() + 1)}${p(t.getUTCDate())}T${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())}\n`;
}
