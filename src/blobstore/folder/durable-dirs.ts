/**
 * Creates folders durably and remembers which ones exist, so that the write
 * path of the folder store costs no stat or mkdir call for a known folder.
 */
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';

/** Forget everything past this many folders; a miss only costs one mkdir. */
const MAX_KNOWN = 100_000;

/** Flushes a folder's entries (a rename or mkdir inside it) to disk. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The `code` of a Node system error, if it has one. */
export function errorCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * The folders under one root known to exist with their own directory entry
 * on disk. A folder is added only after its parent was fsynced, and creations
 * of one folder are shared, so a put never resolves while the folder it wrote
 * into could still vanish in a crash.
 */
export class DurableDirs {
  readonly #root: string;
  readonly #known = new Set<string>();
  readonly #pending = new Map<string, Promise<void>>();

  constructor(root: string) {
    this.#root = root;
    this.#known.add(root);
  }

  /** Make sure `dir` (inside the root) exists durably. */
  async ensure(dir: string): Promise<void> {
    if (this.#known.has(dir)) return;
    let pending = this.#pending.get(dir);
    if (pending === undefined) {
      pending = this.#create(dir).finally(() => this.#pending.delete(dir));
      this.#pending.set(dir, pending);
    }
    await pending;
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

  async #create(dir: string): Promise<void> {
    const parent = path.dirname(dir);
    if (parent === dir || !dir.startsWith(this.#root)) {
      throw new Error(`refusing to create ${dir} outside ${this.#root}`);
    }
    await this.ensure(parent);
    let created = true;
    try {
      await mkdir(dir);
    } catch (err) {
      // Another process made it; it is responsible for flushing it.
      if (errorCode(err) !== 'EEXIST') throw err;
      created = false;
    }
    if (created) await fsyncDir(parent);
    if (this.#known.size >= MAX_KNOWN) {
      this.#known.clear();
      this.#known.add(this.#root);
    }
    this.#known.add(dir);
  }
}
