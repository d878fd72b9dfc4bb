/**
 * A tree in any blob store (an S3 bucket): every request reads the store, so
 * the edge is never behind it. A small page is read whole in one GET and
 * described; a large one (a big root index) is described once per version,
 * known by its size and time, and then streamed. A file is one GET (HEAD first
 * when a range must be worked out from its size). S3 writes whole objects only,
 * so nothing half-written is ever read.
 */
import type { BlobBody, BlobStore } from '../blobstore/blob-store.js';
import { BlobNotFoundError, PyedgeError } from '../core/errors.js';
import { describePage, PageDescriber, type PageMeta } from './page-meta.js';
import { PAGE_KEEP_BYTES, readAll, type FileIntent, type TreeFile, type TreePage, type TreeSource } from './tree-source.js';

/** Attempts at reading a large page whose object is replaced between describing it and streaming it. */
const LARGE_PAGE_ATTEMPTS = 3;

async function orNull<T>(work: Promise<T>): Promise<T | null> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof BlobNotFoundError) return null;
    throw err;
  }
}

function versionOf(blob: { size: number; lastModified: Date }): string {
  return `${blob.size}:${blob.lastModified.getTime()}`;
}

export class BlobTreeSource implements TreeSource {
  readonly description: string;
  /** The meta of large pages, by key, with the version it describes. */
  readonly #large = new Map<string, { version: string; meta: PageMeta }>();

  constructor(private readonly store: BlobStore) {
    this.description = store.description;
  }

  async page(key: string): Promise<TreePage | null> {
    for (let attempt = 0; attempt < LARGE_PAGE_ATTEMPTS; attempt++) {
      const blob = await orNull(this.store.get(key));
      if (blob === null) return null;
      if (blob.size <= PAGE_KEEP_BYTES) {
        const body = await readAll(blob.body);
        return { meta: describePage(body), body, stream: () => blob.body, release: () => undefined };
      }
      const known = this.#large.get(key);
      if (known !== undefined && known.version === versionOf(blob)) return this.#streamed(known.meta, blob);
      // Described from this read, then served from the next one if it is still the same version.
      const d = new PageDescriber();
      for await (const c of blob.body) d.update(c as Buffer);
      this.#large.set(key, { version: versionOf(blob), meta: d.finish() });
      if (this.#large.size > 64) this.#large.delete(this.#large.keys().next().value!);
    }
    throw new PyedgeError('PYEDGE_UNAVAILABLE', 'the page kept changing while it was read; try again', { key });
  }

  #streamed(meta: PageMeta, blob: BlobBody): TreePage {
    return {
      meta,
      body: null,
      stream: () => blob.body,
      release: () => blob.body.destroy(),
    };
  }

  async file(key: string, intent: FileIntent): Promise<TreeFile | null> {
    if (intent === 'whole') {
      const blob = await orNull(this.store.get(key));
      if (blob === null) return null;
      let taken = false;
      return {
        size: blob.size,
        lastModified: blob.lastModified,
        stream: async (range) => {
          if (range === null && !taken) {
            taken = true;
            return blob.body;
          }
          blob.body.destroy();
          return (await this.store.get(key, range ? { range } : {})).body;
        },
        release: () => {
          if (!taken) blob.body.destroy();
        },
      };
    }
    const info = await orNull(this.store.head(key));
    if (info === null) return null;
    return {
      size: info.size,
      lastModified: info.lastModified,
      stream: async (range) => (await this.store.get(key, range ? { range } : {})).body,
      release: () => undefined,
    };
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
