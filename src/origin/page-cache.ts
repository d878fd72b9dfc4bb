/**
 * Rendered Simple pages, kept per project and invalidated by serial. The origin is
 * the only writer: its own writes invalidate at once, and a cheap poll of the
 * changelog catches writes made by other processes (the CLI).
 */
import { createHash } from 'node:crypto';
import type { Database } from '../db/database.js';
import { renderProjectHtml, renderProjectJson, renderRootHtml, renderRootJson } from '../render/index.js';

/** One page in both encodings, with strong ETags. */
export interface RenderedPage {
  /** Project serial (project pages) or the index's last serial (root). */
  readonly serial: number;
  readonly html: Buffer;
  readonly json: Buffer;
  readonly htmlEtag: string;
  readonly jsonEtag: string;
}

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

function page(serial: number, html: string, json: string): RenderedPage {
  const h = Buffer.from(html);
  const j = Buffer.from(json);
  return { serial, html: h, json: j, htmlEtag: etagOf(h), jsonEtag: etagOf(j) };
}

export class PageCache {
  private readonly projects = new Map<string, RenderedPage | null>();
  private rootPage: RenderedPage | null = null;
  /** The newest serial whose effects this cache reflects. */
  private knownSerial = -1;
  private syncing: Promise<void> | null = null;
  /** Bumped on every invalidation, so a render that raced a write is not kept. */
  private generation = 0;

  constructor(
    private readonly db: Database,
    private readonly maxEntries = 10_000,
  ) {}

  /** The index's last serial as this cache knows it. */
  get lastSerial(): number {
    return this.knownSerial;
  }

  /** Rendered project page, or null when there is no such project. */
  async project(normalizedName: string): Promise<RenderedPage | null> {
    const cached = this.projects.get(normalizedName);
    if (cached !== undefined) {
      // Refresh recency for LRU eviction.
      this.projects.delete(normalizedName);
      this.projects.set(normalizedName, cached);
      return cached;
    }
    const generation = this.generation;
    const state = await this.db.getProjectState(normalizedName);
    const rendered = state ? page(state.project.lastSerial, renderProjectHtml(state), renderProjectJson(state)) : null;
    if (generation === this.generation) this.remember(normalizedName, rendered);
    return rendered;
  }

  async root(): Promise<RenderedPage> {
    if (this.rootPage) return this.rootPage;
    const generation = this.generation;
    const serial = await this.db.lastSerial();
    const projects = await this.db.listProjects();
    const rendered = page(serial, renderRootHtml(projects), renderRootJson(projects, serial));
    if (generation === this.generation) this.rootPage = rendered;
    return rendered;
  }

  /** Forget what a write changed. Call after the write commits. */
  invalidate(normalizedNames: readonly string[]): void {
    this.generation++;
    for (const n of normalizedNames) this.projects.delete(n);
    this.rootPage = null;
  }

  /** Catch up with writes made by other processes; coalesces concurrent calls. */
  sync(): Promise<void> {
    this.syncing ??= this.doSync().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  private async doSync(): Promise<void> {
    if (this.knownSerial < 0) {
      this.knownSerial = await this.db.lastSerial();
      return;
    }
    for (let i = 0; i < 1000; i++) {
      const changes = await this.db.changesSince(this.knownSerial, 1000);
      if (changes.length === 0) return;
      this.generation++;
      for (const c of changes) this.projects.delete(c.normalizedName);
      this.rootPage = null;
      this.knownSerial = changes[changes.length - 1]!.serial;
      if (changes.length < 1000) return;
    }
    // Far behind: start over rather than walk the whole changelog.
    this.generation++;
    this.projects.clear();
    this.rootPage = null;
    this.knownSerial = await this.db.lastSerial();
  }

  private remember(name: string, rendered: RenderedPage | null): void {
    this.projects.set(name, rendered);
    if (this.projects.size > this.maxEntries) {
      const oldest = this.projects.keys().next().value;
      if (oldest !== undefined) this.projects.delete(oldest);
    }
  }
}
