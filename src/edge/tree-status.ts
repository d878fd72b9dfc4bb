/**
 * Whether an edge's tree is published, and at which serial: its state object
 * (written last in every batch) and its root index. Read at most every
 * `maxAgeMs` and shared by all requests meanwhile; until a tree has a state
 * object nothing in it is served (a first build writes pages in place, not yet
 * whole), and the root's `X-PyPI-Last-Serial` is the state's serial.
 */
import { ROOT_KEYS, STATE_KEY } from '../sync/tree-layout.js';
import { parseTreeState, type TreeState } from '../sync/tree-state.js';
import type { TreeSource } from './tree-source.js';

export interface TreeSnapshot {
  /** The state object, or null when there is none (or it cannot be parsed). */
  readonly state: TreeState | null;
  /** Whether the root index (`simple/index.html`) is there. */
  readonly root: boolean;
  /** Why the tree cannot be read, when reading it failed. */
  readonly error: string | null;
  /** When this was read (ms since the epoch). */
  readonly readAt: number;
}

export class TreeStatus {
  #snapshot: TreeSnapshot | null = null;
  #reading: Promise<TreeSnapshot> | null = null;
  /** The state object's ETag, so an unchanged state is not parsed again. */
  #stateEtag = '';

  constructor(
    private readonly source: TreeSource,
    private readonly maxAgeMs = 500,
    private readonly now: () => number = Date.now,
  ) {}

  /** The tree as read at most `maxAgeMs` ago (waits for a read only when none is that fresh). */
  current(): Promise<TreeSnapshot> | TreeSnapshot {
    const s = this.#snapshot;
    if (s !== null && this.now() - s.readAt < this.maxAgeMs) return s;
    this.#reading ??= this.#read().finally(() => {
      this.#reading = null;
    });
    // A stale snapshot of a published tree answers at once while the next read runs, so requests never
    // queue behind the store; an unpublished one waits, so a tree is served the moment it is published.
    return s !== null && s.state !== null ? s : this.#reading;
  }

  /** Reads the tree now. */
  async refresh(): Promise<TreeSnapshot> {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = null;
    });
    return this.#reading;
  }

  async #read(): Promise<TreeSnapshot> {
    const readAt = this.now();
    let snapshot: TreeSnapshot;
    try {
      const [page, root] = await Promise.all([this.source.page(STATE_KEY), this.source.file(ROOT_KEYS.html, 'head')]);
      let state = this.#snapshot?.state ?? null;
      if (page === null) {
        state = null;
        this.#stateEtag = '';
      } else if (page.meta.etag !== this.#stateEtag) {
        page.release();
        const bytes = page.body ?? Buffer.alloc(0);
        try {
          state = parseTreeState(bytes);
        } catch {
          state = null;
        }
        this.#stateEtag = page.meta.etag;
      } else {
        page.release();
      }
      root?.release();
      snapshot = { state, root: root !== null, error: null, readAt };
    } catch (err) {
      // The last state stays known (pages are still tried); readiness reports the failure.
      const last = this.#snapshot;
      snapshot = { state: last?.state ?? null, root: last?.root ?? false, error: err instanceof Error ? err.message : String(err), readAt };
    }
    this.#snapshot = snapshot;
    return snapshot;
  }
}
