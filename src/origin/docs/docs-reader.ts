/**
 * Reads published documentation: resolves a project's pointer (cached in
 * memory) and opens files inside the generation it names, and nowhere else.
 */
import type { Readable } from 'node:stream';
import type { BlobBody, BlobInfo, BlobStore } from '../../blobstore/blob-store.js';
import { isPyedgeError } from '../../core/errors.js';
import { decodePointer, generationPrefix, pointerKey, type DocsPointer } from './docs-generations.js';

/** An open documentation file. */
export interface DocsFile {
  readonly generation: string;
  /** Path inside the documentation root. */
  readonly path: string;
  readonly info: BlobInfo;
  /** The bytes, unless only the head was asked for. Consumers must read or destroy it. */
  readonly body: Readable | null;
  readonly contentLength: number;
}

/** Whether a project still exists: documentation of a removed project is not served. */
export type ProjectExists = (normalizedName: string) => Promise<boolean>;

interface CachedPointer {
  readonly pointer: DocsPointer | null;
  readonly loadedAt: number;
}

function isMissing(err: unknown): boolean {
  return isPyedgeError(err) && err.code === 'PYEDGE_BLOB_NOT_FOUND';
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export class DocsReader {
  private readonly cache = new Map<string, CachedPointer>();

  /**
   * @param ttlMs how long a cached pointer is trusted without a miss; bounds how
   *   long writes by another process (a switch, a project removal) take to show.
   */
  constructor(
    private readonly blobs: BlobStore,
    private readonly projectExists: ProjectExists,
    private readonly ttlMs: number = 5_000,
  ) {}

  /** The project's current documentation, or null. `fresh` bypasses the cache. */
  async current(normalizedName: string, options: { fresh?: boolean } = {}): Promise<DocsPointer | null> {
    const cached = this.cache.get(normalizedName);
    if (!options.fresh && cached && Date.now() - cached.loadedAt < this.ttlMs) return cached.pointer;
    const pointer = (await this.projectExists(normalizedName)) ? await this.readPointer(normalizedName) : null;
    this.cache.set(normalizedName, { pointer, loadedAt: Date.now() });
    return pointer;
  }

  /** The pointer as stored, without the cache or the project check. */
  async readPointer(normalizedName: string): Promise<DocsPointer | null> {
    try {
      const blob = await this.blobs.get(pointerKey(normalizedName));
      return decodePointer(await readAll(blob.body));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  /** Record a pointer this process just wrote, so its own readers switch at once. */
  remember(normalizedName: string, pointer: DocsPointer | null): void {
    this.cache.set(normalizedName, { pointer, loadedAt: Date.now() });
  }

  forget(normalizedName: string): void {
    this.cache.delete(normalizedName);
  }

  /**
   * Open `path` (already checked: relative, no `.`/`..` segments) in the current
   * generation; null when the project has no documentation or no such file. A
   * miss re-reads the pointer once, since another writer may have switched and
   * removed the generation the cache names.
   */
  async open(normalizedName: string, path: string, options: { headOnly?: boolean } = {}): Promise<DocsFile | null> {
    let pointer = await this.current(normalizedName);
    for (let attempt = 0; ; attempt++) {
      if (pointer) {
        const found = await this.openIn(normalizedName, pointer.generation, path, options.headOnly ?? false);
        if (found) return found;
      }
      if (attempt > 0) return null;
      const fresh = await this.current(normalizedName, { fresh: true });
      if (fresh?.generation === pointer?.generation) return null;
      pointer = fresh;
    }
  }

  private async openIn(normalizedName: string, generation: string, path: string, headOnly: boolean): Promise<DocsFile | null> {
    const key = generationPrefix(normalizedName, generation) + path;
    try {
      if (headOnly) {
        const info = await this.blobs.head(key);
        return { generation, path, info, body: null, contentLength: info.size };
      }
      const blob: BlobBody = await this.blobs.get(key);
      return { generation, path, info: blob, body: blob.body, contentLength: blob.contentLength };
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }
}
