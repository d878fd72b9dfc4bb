/**
 * The proxy's cache (`--cache DIR`): verified files by hash (immutable, so
 * any copy is as good as any other), the newest project pages with their
 * serials, and the pinned signing key. Without a folder, files are spooled to
 * a private temporary folder removed at shutdown, and pages live in memory.
 *
 *   files/<hash name>/<hex[0:2]>/<hex>     verified bytes
 *   pages/<name>.json                      CachedPage
 *   serverkeys.json                        keys trusted on first use, by upstream
 *   tmp/                                   downloads being verified
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileHash, ProjectPage } from './simple-page.js';

export interface CachedPage {
  readonly name: string;
  readonly serial: number | null;
  /** When it was fetched (ISO) and from which upstream. */
  readonly fetchedAt: string;
  readonly upstream: string;
  readonly page: ProjectPage;
}

const MEMORY_PAGES = 5000;

export class ProxyCache {
  readonly dir: string;
  /** Pages and files survive a restart. */
  readonly persistent: boolean;
  readonly #pages = new Map<string, CachedPage>();
  readonly #writes = new Map<string, Promise<void>>();

  private constructor(dir: string, persistent: boolean) {
    this.dir = dir;
    this.persistent = persistent;
  }

  static async open(dir: string | null): Promise<ProxyCache> {
    const cache = dir === null ? new ProxyCache(await mkdtemp(join(tmpdir(), 'pyedge-proxy-')), false) : new ProxyCache(dir, true);
    await mkdir(join(cache.dir, 'tmp'), { recursive: true });
    await mkdir(join(cache.dir, 'files'), { recursive: true });
    if (cache.persistent) await mkdir(join(cache.dir, 'pages'), { recursive: true });
    return cache;
  }

  filePath(hash: FileHash): string {
    return join(this.dir, 'files', hash.name, hash.hex.slice(0, 2), hash.hex);
  }

  /** The cached file's size, or null when it is not cached. */
  async fileSize(hash: FileHash): Promise<number | null> {
    try {
      return (await stat(this.filePath(hash))).size;
    } catch {
      return null;
    }
  }

  /** A fresh path to download into before verification. */
  spoolPath(): string {
    return join(this.dir, 'tmp', randomBytes(12).toString('hex'));
  }

  /** Move a verified download to its place; returns that path. */
  async commitFile(spooled: string, hash: FileHash): Promise<string> {
    const path = this.filePath(hash);
    await mkdir(join(path, '..'), { recursive: true });
    await rename(spooled, path);
    return path;
  }

  /** Write verified bytes to their place (through a spool file, so readers never see half a file). */
  async putFile(bytes: Buffer, hash: FileHash): Promise<string> {
    const spooled = this.spoolPath();
    await writeFile(spooled, bytes);
    return this.commitFile(spooled, hash);
  }

  async discard(spooled: string): Promise<void> {
    await unlink(spooled).catch(() => undefined);
  }

  /** The newest page known for a project: memory first, then the folder. */
  async page(name: string): Promise<CachedPage | null> {
    const hit = this.#pages.get(name);
    if (hit) return hit;
    if (!this.persistent) return null;
    try {
      const cached = JSON.parse(await readFile(join(this.dir, 'pages', `${name}.json`), 'utf8')) as CachedPage;
      this.#remember(cached);
      return cached;
    } catch {
      return null;
    }
  }

  /** Keep a page unless an equal or newer one is already kept. */
  async putPage(cached: CachedPage): Promise<void> {
    const current = this.#pages.get(cached.name);
    if (current && (current.serial ?? -1) > (cached.serial ?? -1)) return;
    this.#remember(cached);
    if (!this.persistent) return;
    // One write at a time per project, so an older page can never land after a newer one.
    const write = (this.#writes.get(cached.name) ?? Promise.resolve()).then(async () => {
      if (this.#pages.get(cached.name) !== cached && (this.#pages.get(cached.name)?.serial ?? -1) > (cached.serial ?? -1)) return;
      const tmp = this.spoolPath();
      await writeFile(tmp, JSON.stringify(cached));
      await rename(tmp, join(this.dir, 'pages', `${cached.name}.json`));
    });
    const settled = write.catch(() => undefined);
    this.#writes.set(cached.name, settled);
    void settled.then(() => {
      if (this.#writes.get(cached.name) === settled) this.#writes.delete(cached.name);
    });
    await write;
  }

  #remember(cached: CachedPage): void {
    this.#pages.delete(cached.name);
    this.#pages.set(cached.name, cached);
    if (this.#pages.size > MEMORY_PAGES) this.#pages.delete(this.#pages.keys().next().value!);
  }

  /** Keys trusted on first use, PEM by upstream. */
  async readKeys(): Promise<Record<string, string>> {
    if (!this.persistent) return {};
    try {
      return JSON.parse(await readFile(join(this.dir, 'serverkeys.json'), 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }

  async writeKeys(keys: Record<string, string>): Promise<void> {
    if (!this.persistent) return;
    const tmp = this.spoolPath();
    await writeFile(tmp, JSON.stringify(keys, null, 2));
    await rename(tmp, join(this.dir, 'serverkeys.json'));
  }

  async close(): Promise<void> {
    if (!this.persistent) await rm(this.dir, { recursive: true, force: true });
    else await rm(join(this.dir, 'tmp'), { recursive: true, force: true });
  }
}
