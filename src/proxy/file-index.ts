/**
 * What the proxy knows about each file it has linked: its name, hashes and
 * where each upstream serves it. A file seen on one upstream is looked for at
 * the same path under every other upstream (Warehouse's layout is
 * content-addressed, so the same path holds the same bytes everywhere).
 */
import { fileHash, hashSegment, metadataHash, type FileHash, type PageFile } from './simple-page.js';
import type { Upstream } from './upstream.js';

export interface FileEntry {
  readonly project: string;
  readonly filename: string;
  readonly hash: FileHash;
  /** PEP 658: null when the page offers no metadata file; `hash` null when its hash is unknown. */
  metadata: { hash: FileHash | null } | null;
  /** URLs by upstream index, as that upstream's pages gave them. */
  readonly urls: Map<number, string>;
  /** A site-relative path that should work on any upstream, or null when the link leaves every upstream's site. */
  path: string | null;
  /** An absolute URL outside every upstream (a CDN), used when an upstream gave only that. */
  external: string | null;
}

const MAX_ENTRIES = 200_000;

export class FileIndex {
  readonly #entries = new Map<string, FileEntry>();

  static key(hash: FileHash): string {
    return hashSegment(hash);
  }

  get(hash: FileHash): FileEntry | undefined {
    return this.#entries.get(FileIndex.key(hash));
  }

  /** Record the files of a page that `upstream` served. */
  learn(project: string, upstream: Upstream, files: readonly PageFile[]): void {
    for (const file of files) {
      const hash = fileHash(file);
      if (hash === null) continue;
      const key = FileIndex.key(hash);
      let entry = this.#entries.get(key);
      if (!entry || entry.filename !== file.filename) {
        entry = { project, filename: file.filename, hash, metadata: null, urls: new Map(), path: null, external: null };
        this.#entries.set(key, entry);
        if (this.#entries.size > MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
      }
      entry.urls.set(upstream.index, file.url);
      const path = upstream.relativePath(file.url);
      if (path !== null) entry.path = path;
      else entry.external = file.url;
      if (file.coreMetadata !== false) entry.metadata = { hash: metadataHash(file) };
    }
  }

  /** Where to fetch the file from `upstream`, or null when it cannot be known. */
  urlOn(entry: FileEntry, upstream: Upstream): string | null {
    return entry.urls.get(upstream.index) ?? (entry.path !== null ? upstream.siteUrl(entry.path) : entry.external);
  }
}
