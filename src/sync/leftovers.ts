/**
 * What the tree's pages stopped linking — files, release pages, a removed
 * project's pages — kept until the root index no longer lists it, then deleted
 * (DESIGN.md §4 rule 4: a removal takes the link out first and deletes later).
 */
import { parseFilename } from '../core/filenames.js';
import { normalizeName } from '../core/names.js';
import type { ProjectLinks } from './page-links.js';
import type { StaticTree } from './static-tree.js';
import { metadataKey, projectKeys, versionOfKey } from './tree-layout.js';

/** The metadata key's base file, or the key itself. */
function baseOf(key: string): string {
  return key.endsWith('.metadata') ? key.slice(0, -'.metadata'.length) : key;
}

/** Whether a distribution path's filename names project `name`: a guard before deleting it. */
function belongsTo(name: string, path: string): boolean {
  try {
    return normalizeName(parseFilename(path.slice(path.lastIndexOf('/') + 1)).name) === name;
  } catch {
    return false;
  }
}

export class Leftovers {
  /** Keys (files, metadata) a project's pages stopped linking. */
  readonly #files = new Map<string, Set<string>>();
  /**
   * Projects to look at after the root, with the JSON API releases their pages last written here
   * list (null: no JSON API; undefined: none written here, or their leftovers are deleted already).
   */
  readonly #dirty = new Map<string, ReadonlySet<string> | null | undefined>();
  /** Projects the source said are gone. */
  readonly #gone = new Set<string>();

  /** Note the files `old` linked that `now` does not (now null: the project is gone). */
  unlinked(name: string, old: ProjectLinks | null, now: ProjectLinks | null): void {
    const pending = this.#files.get(name) ?? new Set<string>();
    for (const link of old?.files.values() ?? []) {
      const still = now?.files.get(link.path);
      if (still === undefined) pending.add(link.path);
      if (link.metadataSha256 !== null && (still === undefined || still.metadataSha256 === null)) pending.add(metadataKey(link.path));
    }
    if (pending.size > 0) this.#files.set(name, pending);
  }

  /** The source no longer has the project: its pages go once the root stops listing it. */
  gone(name: string): void {
    this.#gone.add(name);
    // What its pages written earlier stopped linking still goes while a root lists it (and its pages stay).
    if (!this.#dirty.has(name)) this.#dirty.set(name, undefined);
  }

  /** The project's Simple pages are up: it is not gone. */
  exists(name: string): void {
    this.#gone.delete(name);
  }

  /** The project's pages are all written; `releases` are those its JSON API lists (null: no JSON API). */
  written(name: string, releases: ReadonlySet<string> | null): void {
    this.#dirty.set(name, releases);
  }

  /** Delete what nothing links any more. Call after the root index that no longer lists it. Resolves to the keys deleted. */
  async sweep(tree: StaticTree, listed: ReadonlySet<string>): Promise<number> {
    let deleted = 0;
    const remove = async (key: string): Promise<void> => {
      await tree.delete(key);
      deleted++;
    };
    for (const [name, releases] of [...this.#dirty]) {
      const pending = this.#files.get(name) ?? new Set<string>();
      const keys = projectKeys(name);
      if (this.#gone.has(name)) {
        if (listed.has(name)) {
          // Its pages stay until the root no longer lists it: only the release pages they stopped listing go now.
          if (releases !== undefined) await this.#removeUnlistedReleases(tree, name, releases, remove);
          this.#dirty.set(name, undefined);
          continue;
        }
        // Pages first, then the files they linked. The Simple JSON page, which links every file
        // and is read back for them, goes last, so a crash in between leaves it to find the files
        // again on the next run. The JSON API page goes before the release pages it lists.
        const readBack = (key: string): number => (key === keys.v1Json ? 2 : key === keys.jsonApi || !key.startsWith(keys.pypiPrefix) ? 0 : 1);
        const pages = [...(await tree.keys(keys.simplePrefix)), ...(await tree.keys(keys.pypiPrefix))];
        for (const key of pages.sort((a, b) => readBack(a) - readBack(b))) await remove(key);
        for (const key of pending) if (belongsTo(name, baseOf(key))) await remove(key);
        this.#gone.delete(name);
      } else {
        // JSON API pages the new pages do not have (a removed release, a quarantine) go first,
        // so that the links read back below are the new pages' only.
        if (releases !== undefined) await this.#removeUnlistedReleases(tree, name, releases, remove);
        const current = await tree.readProjectLinks(name);
        for (const key of pending) {
          const link = current?.files.get(baseOf(key));
          const linked = link !== undefined && (key === link.path || link.metadataSha256 !== null);
          if (!linked && belongsTo(name, baseOf(key))) await remove(key);
        }
      }
      this.#dirty.delete(name);
      this.#files.delete(name);
    }
    return deleted;
  }

  /** The JSON API pages of `name` that its pages last written do not have (all of them when `releases` is null). */
  async #removeUnlistedReleases(tree: StaticTree, name: string, releases: ReadonlySet<string> | null, remove: (key: string) => Promise<void>): Promise<void> {
    const keys = projectKeys(name);
    for (const key of await tree.keys(keys.pypiPrefix)) {
      const version = versionOfKey(name, key);
      if (key === keys.jsonApi ? releases === null : version !== null && !releases?.has(version)) await remove(key);
    }
  }
}
