/**
 * Creates folders durably and remembers which ones exist, so that the write
 * path of the folder store costs no stat or mkdir call for a known folder.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { flushOnThread } from './flush-threads.js';

/** Forget everything past this many folders; a miss only costs one mkdir. */
const MAX_KNOWN = 100_000;

/** Flushes a folder's entries (a rename or mkdir inside it) to disk. */
export function fsyncDir(dir: string): Promise<void> {
  return flushOnThread(dir, false);
}

/** The `code` of a Node system error, if it has one. */
export function errorCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** A folder being created: `created` once it exists, `durable` once its entry and its ancestors' are on disk. */
interface Creation {
  readonly created: Promise<void>;
  readonly durable: Promise<void>;
}

/** What `prepare` hands back: the folder exists; `durable` settles once it would survive a crash. */
export interface PreparedDir {
  readonly durable: Promise<void>;
}

const DURABLE: PreparedDir = { durable: Promise.resolve() };

/**
 * The folders under one root known to exist with their own directory entry
 * on disk. A folder is added only after its parent was fsynced, and creations
 * of one folder are shared, so a put never resolves while the folder it wrote
 * into could still vanish in a crash. The flushes of new folders' parents run
 * side by side (and beside the caller's own), not one after another: a new
 * blob's path has two or three new folders, and each flush waits for the
 * disk.
 */
export class DurableDirs {
  readonly #root: string;
  readonly #known = new Set<string>();
  readonly #pending = new Map<string, Creation>();

  constructor(root: string) {
    this.#root = root;
    this.#known.add(root);
  }

  /**
   * Make sure `dir` (inside the root) exists: resolves once it does. Flushing
   * the new folders' parents goes on: await `durable` before relying on them.
   */
  async prepare(dir: string): Promise<PreparedDir> {
    const creation = this.#creation(dir);
    if (creation === null) return DURABLE;
    await creation.created;
    return { durable: creation.durable };
  }

  /** Make sure `dir` (inside the root) exists durably. */
  async ensure(dir: string): Promise<void> {
    await (await this.prepare(dir)).durable;
  }

  /** Forget `dir`, which was just removed. */
  forget(dir: string): void {
    this.#known.delete(dir);
  }

  /** Forget `dir` and its ancestors: a rename or mkdir found one of them missing. */
  forgetWithAncestors(dir: string): void {
    for (let d = dir; d !== this.#root && d.startsWith(this.#root); d = path.dirname(d)) {
      this.#known.delete(d);
    }
  }

  /** The creation of `dir` under way (started now if need be), or null when it is known to be durable. */
  #creation(dir: string): Creation | null {
    if (this.#known.has(dir)) return null;
    const pending = this.#pending.get(dir);
    if (pending !== undefined) return pending;
    const creation = this.#create(dir);
    this.#pending.set(dir, creation);
    const done = (): void => {
      if (this.#pending.get(dir) === creation) this.#pending.delete(dir);
    };
    creation.durable.then(done, done);
    return creation;
  }

  #create(dir: string): Creation {
    const parent = path.dirname(dir);
    if (parent === dir || !dir.startsWith(this.#root)) {
      const err = Promise.reject(new Error(`refusing to create ${dir} outside ${this.#root}`));
      err.catch(() => undefined);
      return { created: err, durable: err };
    }
    const up = this.#creation(parent);
    const made = (async (): Promise<boolean> => {
      if (up !== null) await up.created;
      try {
        await mkdir(dir);
        return true;
      } catch (err) {
        // Another process made it; it is responsible for flushing it.
        if (errorCode(err) !== 'EEXIST') throw err;
        return false;
      }
    })();
    const durable = (async (): Promise<void> => {
      const created = await made;
      await Promise.all([up?.durable, created ? fsyncDir(parent) : undefined]);
      if (this.#known.size >= MAX_KNOWN) {
        this.#known.clear();
        this.#known.add(this.#root);
      }
      this.#known.add(dir);
    })();
    // Whoever waits on these sees their failures; the copies kept here must not count as unhandled.
    durable.catch(() => undefined);
    const created = made.then(() => undefined);
    created.catch(() => undefined);
    return { created, durable };
  }
}
