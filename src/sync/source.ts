/**
 * What the sync engine reads from: an index with a changelog. The publisher's
 * source is a pyedge origin (push: its change feed); a mirror's will be any
 * Warehouse-compatible index (polling). The engine never sees HTTP.
 */
import type { Readable } from 'node:stream';
import type { ProjectListing } from '../core/model.js';

/** One changelog entry, as much of it as the engine needs. */
export interface SourceChange {
  readonly serial: number;
  /** PEP 503 normalized project name. */
  readonly project: string;
  readonly action: string;
  /** When it happened (ISO 8601). */
  readonly time: string;
}

/** A page of the changelog. */
export interface ChangePage {
  readonly changes: readonly SourceChange[];
  /** The serial to ask from next time: the last change's, or the `since` asked for. */
  readonly next: number;
  /** The source's newest serial. */
  readonly lastSerial: number;
}

/** The source's root index at one serial: every project with its own last serial. */
export interface SourceListing {
  readonly serial: number;
  /** In the order the source's root index lists them (the tree's root keeps it). */
  readonly projects: readonly ProjectListing[];
  /** When the change at `serial` happened (ISO 8601), or null when unknown. */
  readonly time: string | null;
}

/**
 * Everything the static tree holds for one project, all taken at one serial,
 * as the bytes the tree will serve (the engine writes them unchanged).
 */
export interface ProjectSnapshot {
  /** PEP 503 normalized name. */
  readonly name: string;
  /** The project's last serial; every page below carries it. */
  readonly serial: number;
  /** `/simple/<name>/` as HTML (served for both `text/html` and `…v1+html`). */
  readonly html: Buffer;
  /** `/simple/<name>/` as PEP 691 JSON. */
  readonly json: Buffer;
  /** `/pypi/<name>/json`, or null when the source shows none (no releases, or quarantined). */
  readonly jsonApi: Buffer | null;
  /**
   * `/pypi/<name>/<version>/json` for every release `jsonApi` lists, by the
   * version's stored spelling, at the same serial; empty without `jsonApi`.
   * Fetched on the first call (a project can have hundreds, so the engine puts
   * the Simple pages up first). Null when the project changed meanwhile: the
   * snapshot is stale, take a new one.
   */
  releases(signal?: AbortSignal): Promise<ReadonlyMap<string, Buffer> | null>;
}

/**
 * An index the engine copies from. Implementations retry transient failures
 * themselves (bounded) and throw a PyedgeError when they give up.
 */
export interface SyncSource {
  /** Where it reads from, for logs and the tree's state object. */
  readonly description: string;
  /**
   * How this source shapes the bytes it hands out beyond the index's state
   * (e.g. the public URL JSON API links are rewritten to). Recorded in the
   * tree; when it changes, every project is fetched again.
   */
  readonly rendering: string;
  /**
   * Changes after `since`; when there are none yet, wait up to `waitMs` for
   * one (0: answer at once). Resolves with an empty page on timeout.
   */
  changesSince(since: number, waitMs: number, signal?: AbortSignal): Promise<ChangePage>;
  /** The root index: all projects with their serials, at one serial. */
  listing(signal?: AbortSignal): Promise<SourceListing>;
  /** A project's pages at one serial, or null when the project does not exist (any more). */
  project(name: string, signal?: AbortSignal): Promise<ProjectSnapshot | null>;
  /**
   * Optional hint: `project()` is about to be called for each of `names`; a
   * source that can fetch many projects in one request starts doing so.
   */
  prefetch?(names: readonly string[], signal?: AbortSignal): void;
  /** The bytes of `packages/…` (a distribution file or its `.metadata`). */
  openFile(path: string, signal?: AbortSignal): Promise<Readable>;
  close(): Promise<void>;
}
