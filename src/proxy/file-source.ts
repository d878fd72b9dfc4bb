/**
 * Files (and their PEP 658 metadata) by hash, verified before the client sees
 * a byte: each download goes to a spool file while it is hashed, and only a
 * download whose hash matches the page's is moved into the cache and served.
 * A mismatch is that upstream's failure, and the next upstream is asked, so
 * the client gets a whole, correct file on its first try. One download per
 * file at a time, however many clients ask.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { AllUpstreamsFailed, patient, slowOnly, type AttemptProgress, type Hedger, type Won } from './hedger.js';
import type { FileEntry, FileIndex } from './file-index.js';
import type { PageSource } from './page-source.js';
import type { ProxyCache } from './proxy-cache.js';
import type { Timeouts } from './proxy-config.js';
import type { FileHash } from './simple-page.js';
import { UpstreamFailure, asFailure, requireOk, upstreamRequest } from './upstream-client.js';
import type { Upstream } from './upstream.js';
import type { UpstreamSet } from './upstream-set.js';

export interface FileAnswer {
  /** Where the verified bytes are, or null when they are in `bytes`. */
  readonly path: string | null;
  readonly bytes: Buffer | null;
  readonly size: number;
  readonly fromCache: boolean;
  readonly upstream: string | null;
}

export interface FileSourceDeps {
  readonly upstreams: UpstreamSet;
  readonly hedger: Hedger;
  readonly cache: ProxyCache;
  readonly files: FileIndex;
  readonly pages: PageSource;
  readonly timeouts: Timeouts;
  readonly logger: Logger;
}

/** A verified download: in memory when small, else waiting in the spool folder. */
interface Spooled {
  readonly spool: string | null;
  readonly bytes: Buffer | null;
  readonly size: number;
  readonly sha256: string;
}

/** Downloads whose announced length is at most this are held in memory, served at once and written to the cache behind. */
const IN_MEMORY = 4 * 1024 * 1024;

/** The file could not be found on any upstream's page or in the cache. */
export class UnknownFile extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownFile';
  }
}

export class FileSource {
  readonly #d: FileSourceDeps;
  readonly #inflight = new Map<string, Promise<FileAnswer>>();
  /** Small verified files on their way to the cache folder. */
  readonly #recent = new Map<string, Buffer>();
  integrityFailures = 0;

  constructor(deps: FileSourceDeps) {
    this.#d = deps;
  }

  /** A distribution file named on `project`'s page with this hash, or its metadata file. */
  get(project: string, hash: FileHash, filename: string, metadata: boolean): Promise<FileAnswer> {
    const key = `${hash.name}:${hash.hex}:${metadata ? 'm' : 'f'}`;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#get(project, hash, filename, metadata).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #entry(project: string, hash: FileHash): Promise<FileEntry | null> {
    const known = this.#d.files.get(hash);
    if (known) return known;
    // A link from before a restart, or from a page another proxy served: the project's page names the file.
    try {
      await this.#d.pages.get(project);
    } catch (err) {
      if (!(err instanceof AllUpstreamsFailed) || !err.notFound) throw err;
    }
    return this.#d.files.get(hash) ?? null;
  }

  async #get(project: string, hash: FileHash, filename: string, metadata: boolean): Promise<FileAnswer> {
    const { cache } = this.#d;
    if (!metadata) {
      const recent = this.#recentOr(hash);
      if (recent) return recent;
      const size = await cache.fileSize(hash);
      if (size !== null) return this.#recentOr(hash) ?? { path: cache.filePath(hash), bytes: null, size, fromCache: true, upstream: null };
    }
    const entry = await this.#entry(project, hash);
    if (entry === null || entry.filename !== filename) throw new UnknownFile(`no page of '${project}' links ${filename} with that hash`);
    if (metadata) {
      if (entry.metadata === null) throw new UnknownFile(`the page of '${project}' offers no metadata file for ${filename}`);
      const mhash = entry.metadata.hash;
      if (mhash !== null) {
        const recent = this.#recentOr(mhash);
        if (recent) return recent;
        const size = await cache.fileSize(mhash);
        if (size !== null) return { path: cache.filePath(mhash), bytes: null, size, fromCache: true, upstream: null };
      }
      return this.#download(entry, '.metadata', mhash);
    }
    return this.#download(entry, '', hash);
  }

  async #download(entry: FileEntry, suffix: string, expected: FileHash | null): Promise<FileAnswer> {
    const { upstreams, hedger, cache } = this.#d;
    const order = upstreams.order('file');
    const ask = (list: readonly Upstream[], timeouts: Timeouts): Promise<Won<Spooled>> =>
      hedger.run('file', list, (u, signal, progress) => this.#fetch(u, entry, suffix, expected, timeouts, signal, progress), {
        dispose: (late) => {
          if (late.spool !== null) void cache.discard(late.spool);
        },
      });
    let won: Won<Spooled>;
    try {
      won = await ask(order.upstreams, this.#d.timeouts);
    } catch (err) {
      const slow = err instanceof AllUpstreamsFailed ? slowOnly(err, order.upstreams) : [];
      if (slow.length === 0) throw err;
      won = await ask(slow, patient(this.#d.timeouts));
    }
    const { spool, bytes, size, sha256 } = won.value;
    const key = expected ?? { name: 'sha256' as const, hex: sha256 };
    if (bytes !== null) {
      this.#keepWhileWriting(key, bytes);
      return { path: null, bytes, size, fromCache: false, upstream: won.upstream.root };
    }
    const path = await cache.commitFile(spool!, key);
    return { path, bytes: null, size, fromCache: false, upstream: won.upstream.root };
  }

  /** A small verified file just downloaded and not yet in the cache folder. */
  #recentOr(hash: FileHash): FileAnswer | null {
    const bytes = this.#recent.get(`${hash.name}:${hash.hex}`);
    return bytes ? { path: null, bytes, size: bytes.length, fromCache: true, upstream: null } : null;
  }

  #keepWhileWriting(hash: FileHash, bytes: Buffer): void {
    const key = `${hash.name}:${hash.hex}`;
    this.#recent.set(key, bytes);
    this.#d.cache.putFile(bytes, hash).then(
      () => this.#recent.delete(key),
      (err: unknown) => {
        this.#recent.delete(key);
        this.#d.logger.warn({ err, file: hash.hex }, 'could not write a verified file to the cache');
      },
    );
  }

  async #fetch(
    u: Upstream,
    entry: FileEntry,
    suffix: string,
    expected: FileHash | null,
    timeouts: Timeouts,
    signal: AbortSignal,
    progress: AttemptProgress,
  ): Promise<Spooled> {
    const base = this.#d.files.urlOn(entry, u);
    if (base === null) throw new UpstreamFailure('not-found', 'no link to this file on this upstream');
    const res = await upstreamRequest(base + suffix, { timeouts, signal });
    progress.firstByte(res.firstByteMs);
    requireOk(res);
    const announced = Number(res.headers['content-length'] ?? NaN);
    const inMemory = Number.isFinite(announced) && announced <= IN_MEMORY;
    const spool = inMemory ? null : this.#d.cache.spoolPath();
    const chunks: Buffer[] = [];
    const hasher = createHash(expected?.name ?? 'sha256');
    const sha256 = expected === null || expected.name === 'sha256' ? null : createHash('sha256');
    let size = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        hasher.update(chunk);
        sha256?.update(chunk);
        done(null, chunk);
      },
    });
    const discard = async (): Promise<void> => {
      if (spool !== null) await this.#d.cache.discard(spool);
    };
    try {
      if (spool !== null) await pipeline(res.body, hashing, createWriteStream(spool));
      else {
        await pipeline(res.body, hashing, async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) {
            chunks.push(chunk);
            if (size > IN_MEMORY) throw new UpstreamFailure('invalid', `longer than the ${announced} bytes announced`);
          }
        });
      }
      if (!res.complete) throw new UpstreamFailure('reset', 'the download was cut short');
    } catch (err) {
      await discard();
      throw asFailure(err);
    }
    const digest = hasher.digest('hex');
    if (expected !== null && digest !== expected.hex) {
      await discard();
      this.integrityFailures++;
      this.#d.logger.warn(
        { upstream: u.root, file: entry.filename + suffix, expected: `${expected.name}=${expected.hex}`, got: digest, size },
        'download does not match the hash on the page; trying another upstream',
      );
      throw new UpstreamFailure('integrity', `${entry.filename}${suffix}: ${expected.name} ${digest} is not ${expected.hex} from the page`);
    }
    return { spool, bytes: spool === null ? Buffer.concat(chunks) : null, size, sha256: sha256 ? sha256.digest('hex') : digest };
  }
}
