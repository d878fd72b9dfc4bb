/**
 * Rendered Simple pages, kept per project and invalidated by serial. The origin is
 * the only writer: its own writes invalidate at once, and a cheap poll of the
 * changelog catches writes made by other processes (the CLI).
 */
import type { Database } from '../db/database.js';
import { strongEtag } from '../core/etags.js';
import type { ProjectState } from '../core/model.js';
import {
  renderProjectHtml,
  renderProjectJson,
  renderProjectJsonApi,
  renderReleaseJsonApi,
} from '../render/index.js';
import { findRelease } from '../render/json-api-release.js';

/** One page in both encodings, with strong ETags. */
export interface RenderedPage {
  /** The project's serial. */
  readonly serial: number;
  readonly html: Buffer;
  readonly json: Buffer;
  readonly htmlEtag: string;
  readonly jsonEtag: string;
}

function page(serial: number, html: string, json: string): RenderedPage {
  const h = Buffer.from(html);
  const j = Buffer.from(json);
  return { serial, html: h, json: j, htmlEtag: strongEtag(h), jsonEtag: strongEtag(j) };
}

/** One JSON API document with a strong ETag. */
export interface RenderedJson {
  /** Serial of the project the document describes. */
  readonly serial: number;
  readonly body: Buffer;
  readonly etag: string;
}

/** The JSON API documents of one project, rendered when first asked for and kept until the project changes. */
export interface JsonApiPages {
  /** The project's serial. */
  readonly serial: number;
  /** The display name (for messages). */
  readonly name: string;
  /** `/pypi/<name>/json`, or null when no release can be shown. */
  project(): RenderedJson | null;
  /** The stored spelling of the release a requested version denotes (`1.0.0` → `1.0`), or null. */
  resolveVersion(version: string): string | null;
  /** `/pypi/<name>/<version>/json` for a stored spelling (see resolveVersion), or null. */
  release(version: string): RenderedJson | null;
}

/** How many projects' JSON API documents are kept: each holds the project's state, which can be large. */
const JSON_API_ENTRIES = 1_000;
/** How many release documents are kept per project. */
const JSON_API_RELEASES_PER_PROJECT = 64;

function renderedJson(serial: number, body: string): RenderedJson {
  const b = Buffer.from(body);
  return { serial, body: b, etag: strongEtag(b) };
}

class ProjectJsonApi implements JsonApiPages {
  private projectDoc: RenderedJson | null | undefined;
  private readonly releases = new Map<string, RenderedJson | null>();

  constructor(
    private readonly state: ProjectState,
    readonly baseUrl: string,
  ) {}

  get serial(): number {
    return this.state.project.lastSerial;
  }

  get name(): string {
    return this.state.project.name;
  }

  project(): RenderedJson | null {
    if (this.projectDoc === undefined) {
      const body = renderProjectJsonApi(this.state, this.baseUrl);
      this.projectDoc = body === null ? null : renderedJson(this.serial, body);
    }
    return this.projectDoc;
  }

  resolveVersion(version: string): string | null {
    if (this.state.project.status === 'quarantined') return null;
    return findRelease(this.state.releases, version)?.version ?? null;
  }

  release(version: string): RenderedJson | null {
    const cached = this.releases.get(version);
    if (cached !== undefined) return cached;
    const body = renderReleaseJsonApi(this.state, version, this.baseUrl);
    const doc = body === null ? null : renderedJson(this.serial, body);
    this.releases.set(version, doc);
    if (this.releases.size > JSON_API_RELEASES_PER_PROJECT) {
      const oldest = this.releases.keys().next().value;
      if (oldest !== undefined) this.releases.delete(oldest);
    }
    return doc;
  }
}

export class PageCache {
  private readonly projects = new Map<string, RenderedPage | null>();
  /** JSON API documents per project (null: no such project). */
  private readonly jsonApis = new Map<string, ProjectJsonApi | null>();
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

  /**
   * The JSON API documents of a project, or null when there is no such project.
   * `baseUrl` makes the links absolute, as Warehouse's are.
   */
  async jsonApi(normalizedName: string, baseUrl: string): Promise<JsonApiPages | null> {
    const cached = this.jsonApis.get(normalizedName);
    if (cached !== undefined && (cached === null || cached.baseUrl === baseUrl)) {
      this.jsonApis.delete(normalizedName);
      this.jsonApis.set(normalizedName, cached);
      return cached;
    }
    const generation = this.generation;
    const state = await this.db.getProjectState(normalizedName);
    const pages = state ? new ProjectJsonApi(state, baseUrl) : null;
    if (generation === this.generation) {
      this.jsonApis.set(normalizedName, pages);
      if (this.jsonApis.size > JSON_API_ENTRIES) {
        const oldest = this.jsonApis.keys().next().value;
        if (oldest !== undefined) this.jsonApis.delete(oldest);
      }
    }
    return pages;
  }

  /** Forget what a write changed. Call after the write commits. */
  invalidate(normalizedNames: readonly string[]): void {
    this.generation++;
    for (const n of normalizedNames) this.projects.delete(n);
    for (const n of normalizedNames) this.jsonApis.delete(n);
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
      for (const c of changes) this.jsonApis.delete(c.normalizedName);
      this.knownSerial = changes[changes.length - 1]!.serial;
      if (changes.length < 1000) return;
    }
    // Far behind: start over rather than walk the whole changelog.
    this.generation++;
    this.projects.clear();
    this.jsonApis.clear();
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
