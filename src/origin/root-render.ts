/**
 * One rendering of the root Simple index into files: the project list is read
 * from the database page by page and streamed into the HTML and the JSON file
 * in one pass, so memory stays flat at any index size. Written under a temp
 * name and renamed, so a reader never opens half a file. The same function runs
 * in the root worker thread (root-worker.ts) and, without one, in the caller.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { etagHash, etagOfHash } from '../core/etags.js';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Database } from '../db/database.js';
import { rootHtml, rootJson } from '../render/root-parts.js';

/** One rendering of the root, in both encodings, on disk. */
export interface RootFiles {
  readonly serial: number;
  readonly htmlPath: string;
  readonly jsonPath: string;
  readonly htmlSize: number;
  readonly jsonSize: number;
  readonly htmlEtag: string;
  readonly jsonEtag: string;
}

/** A rendering and what it cost, for the log. */
export interface RootRendering {
  readonly files: RootFiles;
  readonly projects: number;
  readonly ms: number;
}

/** Writes to a file stream, honouring back-pressure, and tracks size and hash. */
class CountingWriter {
  size = 0;
  private readonly hash = etagHash();
  constructor(private readonly out: WriteStream) {}

  async write(text: string): Promise<void> {
    const chunk = Buffer.from(text);
    this.size += chunk.length;
    this.hash.update(chunk);
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }

  async end(): Promise<string> {
    this.out.end();
    await once(this.out, 'finish');
    return etagOfHash(this.hash);
  }

  /** Stop writing after a failure; the caller removes the file. */
  async abort(): Promise<void> {
    if (this.out.closed) return;
    const closed = once(this.out, 'close').catch(() => undefined);
    this.out.destroy();
    await closed;
  }
}

/**
 * Render the root for at least `minSerial` into `dir` as `root-<serial>-<tag>.html`
 * and `.json`. `tag` keeps names unique between processes and renderings.
 */
export async function renderRootFiles(db: Database, dir: string, minSerial: number, pageSize: number, tag: string): Promise<RootRendering> {
  const started = Date.now();
  // The serial is read before the listing, so the files never claim more than they hold.
  const serial = Math.max(minSerial, await db.lastSerial());
  const stamp = `${serial}-${tag}`;
  const htmlPath = join(dir, `root-${stamp}.html`);
  const jsonPath = join(dir, `root-${stamp}.json`);
  const html = new CountingWriter(createWriteStream(`${htmlPath}.tmp`));
  const json = new CountingWriter(createWriteStream(`${jsonPath}.tmp`));
  let count = 0;
  try {
    await html.write(rootHtml.head());
    await json.write(rootJson.head(serial));
    let after = '';
    for (;;) {
      const page = await db.listProjectsAfter(after, pageSize);
      if (page.length === 0) break;
      let h = '';
      let j = '';
      for (const p of page) {
        h += rootHtml.entry(p);
        j += rootJson.entry(p, count === 0);
        count++;
      }
      await html.write(h);
      await json.write(j);
      after = page[page.length - 1]!.normalizedName;
      if (page.length < pageSize) break;
    }
    await html.write(rootHtml.tail());
    await json.write(rootJson.tail());
    const [htmlEtag, jsonEtag] = await Promise.all([html.end(), json.end()]);
    await Promise.all([rename(`${htmlPath}.tmp`, htmlPath), rename(`${jsonPath}.tmp`, jsonPath)]);
    return {
      files: { serial, htmlPath, jsonPath, htmlSize: html.size, jsonSize: json.size, htmlEtag, jsonEtag },
      projects: count,
      ms: Date.now() - started,
    };
  } catch (err) {
    await Promise.all([html.abort(), json.abort()]);
    await Promise.all([rm(`${htmlPath}.tmp`, { force: true }), rm(`${jsonPath}.tmp`, { force: true })]);
    throw err;
  }
}
