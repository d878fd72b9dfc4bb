/**
 * The root Simple index (`/simple/`), which at PyPI's size is tens of MB: rendered
 * by streaming the project list from the database into files (HTML and JSON in one
 * pass, see root-render.ts), in a worker thread so requests never wait behind it,
 * kept by serial, and served from disk. While a new rendering runs, readers get the
 * previous one once they have waited `maxWaitMs`, so a busy large index never makes
 * them wait for a whole rendering after every upload. Renderings are started by
 * readers and coalesced: one runs at a time, for the newest serial when it starts;
 * after one, the next waits for a rest as long as `restFactor` times the last one
 * took, so under steady uploads renderings use a bounded share of a core; and
 * nothing is rendered while nobody reads.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { RootFiles } from './root-render.js';
import { createRootRenderer, type RootRenderer } from './root-renderer.js';

export type { RootFiles } from './root-render.js';

export interface RootIndexOptions {
  /** How long a reader waits for a new rendering before getting the previous one, in ms. */
  readonly maxWaitMs: number;
  /** Projects read from the database per query. */
  readonly pageSize: number;
  /**
   * The database's URL, for the worker thread's own connection. Without one (or
   * for SQLite `:memory:`), renderings run on the calling thread with `db`.
   */
  readonly dbUrl: string | undefined;
  /** Who renders; by default a worker thread when `dbUrl` allows one (see createRootRenderer). */
  readonly renderer: RootRenderer | undefined;
  /**
   * Rest between renderings, as a multiple of the last rendering's duration
   * (1: renderings run at most half the time; 0: back to back). None after a failure.
   */
  readonly restFactor: number;
}

const DEFAULTS: RootIndexOptions = { maxWaitMs: 1000, pageSize: 5000, dbUrl: undefined, renderer: undefined, restFactor: 1 };

export class RootIndex {
  private current: RootFiles | null = null;
  private rendering: Promise<RootFiles> | null = null;
  /** When the next rendering may start (Date.now() ms). */
  private restUntil = 0;
  private closed = false;
  private readonly options: RootIndexOptions;
  private readonly renderer: RootRenderer;

  constructor(
    private readonly db: Database,
    private readonly dir: string,
    private readonly log: Logger,
    options: Partial<RootIndexOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    this.renderer = this.options.renderer ?? createRootRenderer(db, this.options.dbUrl, dir, this.options.pageSize);
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

  /** The newest rendering, or the previous one if a new one fails or takes longer than maxWaitMs. */
  async files(): Promise<RootFiles> {
    const serial = await this.db.lastSerial();
    const have = this.current;
    if (have && have.serial >= serial) return have;
    const next = this.render(serial);
    if (!have) return next;
    // A failed rendering is logged by render(); this reader still gets the previous one.
    const fallback = next.catch(() => have);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<RootFiles>((resolve) => {
      timer = setTimeout(() => resolve(have), this.options.maxWaitMs);
    });
    try {
      return await Promise.race([fallback, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop the renderer (its worker thread). The files stay until the next init(). */
  async close(): Promise<void> {
    this.closed = true;
    await this.renderer.close();
  }

  /** Start a rendering for at least `serial` once the rest is over, unless one is running or waiting (coalesced). */
  private render(serial: number): Promise<RootFiles> {
    if (this.rendering) return this.rendering;
    const rest = this.restUntil - Date.now();
    this.rendering = (rest > 0 ? new Promise((resolve) => setTimeout(resolve, rest)) : Promise.resolve())
      .then(() => {
        if (this.closed) throw new Error('the root index is closed');
        return this.renderer.render(serial);
      })
      .then(async ({ files, projects, ms }) => {
        // The rendering's own time: a worker thread's start-up is not counted.
        this.restUntil = Date.now() + ms * this.options.restFactor;
        this.log.debug({ serial: files.serial, projects, ms, bytes: files.htmlSize + files.jsonSize }, 'root index rendered');
        const previous = this.current;
        if (!previous || files.serial >= previous.serial) {
          this.current = files;
          // Readers that opened the old files keep reading them; unlinking is safe.
          if (previous) await Promise.all([rm(previous.htmlPath, { force: true }), rm(previous.jsonPath, { force: true })]);
        } else {
          await Promise.all([rm(files.htmlPath, { force: true }), rm(files.jsonPath, { force: true })]);
        }
        return this.current ?? files;
      })
      .finally(() => {
        this.rendering = null;
      });
    this.rendering.catch((err: unknown) => {
      if (!this.closed) this.log.error({ err }, 'rendering the root index failed');
    });
    return this.rendering;
  }
}
