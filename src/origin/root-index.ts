/**
 * The root Simple index (`/simple/`), which at PyPI's size is tens of MB: rendered
 * by streaming the project list from the database into files (HTML and JSON in one
 * pass), kept by serial, and served from disk. While a new rendering runs, readers
 * get the previous one once they have waited `maxWaitMs`, so a busy large index
 * never makes them wait for a whole rendering after every upload.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Logger } from 'pino';
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

export interface RootIndexOptions {
  /** How long a reader waits for a new rendering before getting the previous one, in ms. */
  readonly maxWaitMs: number;
  /** Projects read from the database per query. */
  readonly pageSize: number;
}

const DEFAULTS: RootIndexOptions = { maxWaitMs: 1000, pageSize: 5000 };

/** Writes to a file stream, honouring back-pressure, and tracks size and hash. */
class CountingWriter {
  size = 0;
  private readonly hash = createHash('sha256');
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
    return `"${this.hash.digest('base64url').slice(0, 27)}"`;
  }
}

export class RootIndex {
  private current: RootFiles | null = null;
  private rendering: Promise<RootFiles> | null = null;
  private readonly options: RootIndexOptions;

  constructor(
    private readonly db: Database,
    private readonly dir: string,
    private readonly log: Logger,
    options: Partial<RootIndexOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Remove renderings a previous run left behind. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const f of await readdir(this.dir)) if (f.startsWith('root-')) await rm(join(this.dir, f), { force: true });
  }

  /** Start rendering in the background (at start-up), so the first reader need not wait for it. */
  warm(): void {
    this.db
      .lastSerial()
      .then((serial) => this.render(serial))
      .catch(() => undefined);
  }

  /** The newest rendering, or the previous one if a new one takes longer than maxWaitMs. */
  async files(): Promise<RootFiles> {
    const serial = await this.db.lastSerial();
    const have = this.current;
    if (have && have.serial >= serial) return have;
    const next = this.render(serial);
    if (!have) return next;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<RootFiles>((resolve) => {
      timer = setTimeout(() => resolve(have), this.options.maxWaitMs);
    });
    try {
      return await Promise.race([next, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Start a rendering for at least `serial`, unless one is running (coalesced). */
  private render(serial: number): Promise<RootFiles> {
    if (this.rendering) return this.rendering;
    this.rendering = this.renderNow(serial)
      .then(async (files) => {
        const previous = this.current;
        if (!previous || files.serial >= previous.serial) {
          this.current = files;
          // Readers that opened the old files keep reading them; unlinking is safe.
          if (previous) await Promise.all([rm(previous.htmlPath, { force: true }), rm(previous.jsonPath, { force: true })]);
        }
        return this.current ?? files;
      })
      .finally(() => {
        this.rendering = null;
      });
    this.rendering.catch((err: unknown) => this.log.error({ err }, 'rendering the root index failed'));
    return this.rendering;
  }

  private async renderNow(minSerial: number): Promise<RootFiles> {
    const started = Date.now();
    // The serial is read before the listing, so the files never claim more than they hold.
    const serial = Math.max(minSerial, await this.db.lastSerial());
    const stamp = `${serial}-${process.pid}-${started}`;
    const htmlPath = join(this.dir, `root-${stamp}.html`);
    const jsonPath = join(this.dir, `root-${stamp}.json`);
    const html = new CountingWriter(createWriteStream(`${htmlPath}.tmp`));
    const json = new CountingWriter(createWriteStream(`${jsonPath}.tmp`));
    let count = 0;
    try {
      await html.write(rootHtml.head());
      await json.write(rootJson.head(serial));
      let after = '';
      for (;;) {
        const page = await this.db.listProjectsAfter(after, this.options.pageSize);
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
        if (page.length < this.options.pageSize) break;
      }
      await html.write(rootHtml.tail());
      await json.write(rootJson.tail());
      const [htmlEtag, jsonEtag] = await Promise.all([html.end(), json.end()]);
      await Promise.all([rename(`${htmlPath}.tmp`, htmlPath), rename(`${jsonPath}.tmp`, jsonPath)]);
      this.log.debug({ serial, projects: count, ms: Date.now() - started, bytes: html.size + json.size }, 'root index rendered');
      return { serial, htmlPath, jsonPath, htmlSize: html.size, jsonSize: json.size, htmlEtag, jsonEtag };
    } catch (err) {
      await Promise.all([rm(`${htmlPath}.tmp`, { force: true }), rm(`${jsonPath}.tmp`, { force: true })]);
      throw err;
    }
  }
}
