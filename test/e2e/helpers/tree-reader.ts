/**
 * A reader of a static tree over HTTP (nginx in front of a folder, or an S3
 * server), in its own process, that keeps reading while a publisher writes the
 * tree: the root index, random project pages (Simple JSON and HTML, JSON API)
 * and the files they link, each file checked by SHA-256. It records every
 * torn page and every dangling link (DESIGN.md §4: whatever happens, each link
 * a reader follows resolves).
 *
 * A page read a moment ago may be replaced, and the file it linked deleted,
 * before the reader fetches that file: that is allowed. So a missing file or
 * page counts only when the page (or the root) read again after the miss
 * still links it; the publisher writes files before the pages that link them
 * and deletes them only after no page does, and names never come back.
 *
 * This file is both the helper and the child's entry point.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { htmlLinks, jsonApiLinks, pathOfRelativeLink, simpleJsonLinks, type FileLink } from '../../../src/sync/page-links.js';
import { SeededRandom } from './seeded-random.js';

export interface ReaderReport {
  /** Rounds: root, one project's pages, some of their files. */
  readonly rounds: number;
  readonly pages: number;
  readonly files: number;
  /** Pages or files gone between two reads, with nothing linking them any more (allowed). */
  readonly raced: number;
  /** Torn pages, dangling links, wrong bytes. */
  readonly violations: readonly string[];
}

export interface TreeReader {
  /** Finishes the round under way and reports (the same report however often it is called). */
  stop(): Promise<ReaderReport>;
}

const CHILD_ARG = '--pyedge-tree-reader-child';
/** Files checked per page read. */
const FILES_PER_PAGE = 3;

/** Starts a reader of the tree served at `base` (no trailing slash), its choices seeded by `seed`. */
export async function startTreeReader(base: string, seed: number): Promise<TreeReader> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url), CHILD_ARG, base, String(seed)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  await Promise.race([
    once(child, 'message'),
    exited.then(([code]) => Promise.reject(new Error(`the tree reader exited with ${String(code)} before reading`))),
  ]);
  let stopped: Promise<ReaderReport> | null = null;
  return {
    stop() {
      stopped ??= (async () => {
        const report = Promise.race([
          once(child, 'message').then(([m]) => m as ReaderReport),
          exited.then(([code]) => Promise.reject(new Error(`the tree reader exited with ${String(code)} without a report`))),
        ]);
        child.send('stop');
        const r = await report;
        await exited;
        return r;
      })();
      return stopped;
    },
  };
}

class Reader {
  rounds = 0;
  pages = 0;
  files = 0;
  raced = 0;
  readonly violations: string[] = [];

  constructor(
    readonly base: string,
    readonly random: SeededRandom,
  ) {}

  async get(key: string): Promise<{ status: number; body: Buffer }> {
    // A server that stops answering is reported, not waited on for ever.
    const res = await fetch(`${this.base}/${key}`, { signal: AbortSignal.timeout(15_000) });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, body };
  }

  violation(message: string): void {
    if (this.violations.length < 50) this.violations.push(message);
  }

  /** The project names of the root, or null (and a violation) when it is not a whole root. */
  async root(): Promise<string[] | null> {
    const { status, body } = await this.get('simple/index.v1_json');
    this.pages++;
    if (status !== 200) {
      this.violation(`simple/index.v1_json: HTTP ${status}`);
      return null;
    }
    try {
      const doc = JSON.parse(body.toString('utf8')) as { projects: { name: string }[] };
      return doc.projects.map((p) => p.name);
    } catch {
      this.violation(`simple/index.v1_json: torn (${body.length} bytes)`);
      return null;
    }
  }

  /** Reads a file a page links; a miss counts when `stillLinked()` says the page links it still. */
  async file(key: string, sha256: string, size: number | null, stillLinked: () => Promise<boolean>): Promise<void> {
    const { status, body } = await this.get(key);
    this.files++;
    if (status === 200) {
      const hash = createHash('sha256').update(body).digest('hex');
      if (hash !== sha256 || (size !== null && body.length !== size)) this.violation(`${key}: ${body.length} bytes with sha256 ${hash}, the page says ${size} bytes, ${sha256}`);
    } else if (status === 404 && (await stillLinked())) {
      this.violation(`${key}: HTTP 404, linked by a page read after the miss`);
    } else if (status === 404) {
      this.raced++;
    } else {
      this.violation(`${key}: HTTP ${status}`);
    }
  }

  /** Reads a project page; on a miss, asks the root again. Returns the body, or null. */
  async page(name: string, key: string): Promise<Buffer | null> {
    const { status, body } = await this.get(key);
    this.pages++;
    if (status === 200) return body;
    if (status === 404 && (await this.root())?.includes(name)) this.violation(`${key}: HTTP 404, while a root read after the miss lists ${name}`);
    else if (status === 404) this.raced++;
    else this.violation(`${key}: HTTP ${status}`);
    return null;
  }

  /** Whether the page at `key` (read now) links `path`, as `links` reads it. */
  async links(key: string, path: string, links: (body: Buffer) => readonly { path: string | null }[]): Promise<boolean> {
    const { status, body } = await this.get(key);
    if (status !== 200) return false;
    try {
      return links(body).some((l) => l.path === path);
    } catch {
      return false;
    }
  }

  some<T>(items: readonly T[]): T[] {
    const copy = [...items];
    const out: T[] = [];
    while (out.length < FILES_PER_PAGE && copy.length > 0) out.push(copy.splice(this.random.int(0, copy.length - 1), 1)[0]!);
    return out;
  }

  async round(): Promise<void> {
    this.rounds++;
    const names = await this.root();
    if (names === null || names.length === 0) return;
    const name = this.random.pick(names);
    await this.simpleJson(name);
    await this.simpleHtml(name);
    await this.jsonApi(name);
  }

  async simpleJson(name: string): Promise<void> {
    const key = `simple/${name}/index.v1_json`;
    const body = await this.page(name, key);
    if (body === null) return;
    let files: FileLink[];
    try {
      const page = simpleJsonLinks(body, key);
      if (page.name !== name) this.violation(`${key}: page of ${page.name}`);
      files = page.files;
    } catch {
      return this.violation(`${key}: torn (${body.length} bytes)`);
    }
    const parse = (b: Buffer): FileLink[] => simpleJsonLinks(b).files;
    for (const f of this.some(files)) {
      await this.file(f.path, f.sha256, f.size, () => this.links(key, f.path, parse));
      if (f.metadataSha256 !== null) {
        const meta = `${f.path}.metadata`;
        await this.file(meta, f.metadataSha256, null, () => this.links(key, f.path, (b) => parse(b).filter((l) => l.metadataSha256 !== null)));
      }
    }
  }

  async simpleHtml(name: string): Promise<void> {
    const key = `simple/${name}/index.html`;
    const body = await this.page(name, key);
    if (body === null) return;
    const page = htmlLinks(body);
    if (page.serial === null) return this.violation(`${key}: torn (${body.length} bytes, no serial trailer)`);
    const parse = (b: Buffer): { path: string | null }[] => htmlLinks(b).hrefs.map((h) => ({ path: pathOfRelativeLink(h) }));
    for (const href of this.some(page.hrefs)) {
      const path = pathOfRelativeLink(href);
      const sha256 = /#sha256=([0-9a-f]{64})/.exec(href)?.[1];
      if (path === null || sha256 === undefined) {
        this.violation(`${key}: a link that is not a file of the tree: ${href}`);
        continue;
      }
      await this.file(path, sha256, null, () => this.links(key, path, parse));
    }
  }

  async jsonApi(name: string): Promise<void> {
    const key = `pypi/${name}/json`;
    const { status, body } = await this.get(key);
    this.pages++;
    // A project without releases has no JSON API page; one the root lists has its Simple pages checked above.
    if (status === 404) return;
    if (status !== 200) return this.violation(`${key}: HTTP ${status}`);
    let files: FileLink[];
    try {
      files = jsonApiLinks(body, key).files;
    } catch {
      return this.violation(`${key}: torn (${body.length} bytes)`);
    }
    const parse = (b: Buffer): FileLink[] => jsonApiLinks(b).files;
    for (const f of this.some(files)) await this.file(f.path, f.sha256, f.size, () => this.links(key, f.path, parse));
  }

  report(): ReaderReport {
    return { rounds: this.rounds, pages: this.pages, files: this.files, raced: this.raced, violations: this.violations };
  }
}

async function runChild(base: string, seed: number): Promise<void> {
  const reader = new Reader(base, new SeededRandom(seed));
  let stopping = false;
  process.on('message', (m) => {
    if (m === 'stop') stopping = true;
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.('reading');
  while (!stopping) {
    try {
      await reader.round();
    } catch (err) {
      reader.violation(`read failed: ${(err as Error).message}`);
    }
    // A pause between rounds leaves the two cores to the publisher and the origin.
    await new Promise((r) => setTimeout(r, 10));
  }
  process.send?.(reader.report(), () => process.exit(0));
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === CHILD_ARG) {
  await runChild(process.argv[3]!, Number(process.argv[4]));
}
