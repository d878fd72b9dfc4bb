/**
 * The source's root index as the engine last saw it, kept up to date one
 * listing at a time: which entries changed since the previous listing, and
 * whether any name came, went or changed its spelling (the HTML root then
 * changes). At PyPI's size a listing has 886k entries; comparing each one
 * with the tree every batch, or rendering the HTML root to tell whether the
 * project list moved, costs tens of ms per batch. A source that hands out
 * listings in name order, reusing the entries that did not change (as
 * OriginSource does), is compared in one pass that skips those by identity.
 */
import type { ProjectListing } from '../core/model.js';
import type { SourceListing } from './source.js';

/** Name changes kept for namesAt() before they are folded into one "taken whole". */
const MAX_NAME_CHANGES = 100_000;

export interface ListingUpdate {
  /**
   * The names whose entry changed, came or went since the previous listing;
   * null when the listing was taken whole (the first one, or one not in name
   * order): then every name may have changed.
   */
  readonly changed: readonly string[] | null;
  /** Whether names came, went or changed spelling since the previous listing (false when taken whole: unknown). */
  readonly namesMoved: boolean;
}

/** A name added to or removed from the listing at the tracker's `seq`, or (whole) a listing taken whole there. */
type NameChange = { readonly seq: number; readonly name: string; readonly added: boolean } | { readonly seq: number; readonly whole: true };

export class ListingTracker {
  #listing: SourceListing | null = null;
  /** Each listed project's last serial, by normalized name. */
  #entries = new Map<string, number>();
  #hasNewest = false;
  #seq = 0;
  /** Names that came or went, for whoever follows the names of a listing seen earlier (namesAt). */
  #names: NameChange[] = [];

  /** Listings seen so far: identifies the current one. */
  get seq(): number {
    return this.#seq;
  }

  /** The last serial the current listing gives `name`, or undefined when it does not list it. */
  entry(name: string): number | undefined {
    return this.#entries.get(name);
  }

  /** Whether a listed project changed at the listing's own serial (so a page in the tree shows that serial). */
  get hasNewest(): boolean {
    return this.#hasNewest;
  }

  /** Forget the last listing: the next one is taken whole. */
  reset(): void {
    this.#listing = null;
  }

  /** Take `listing` as the current one; says what changed since the last. */
  update(listing: SourceListing): ListingUpdate {
    const prev = this.#listing;
    this.#seq++;
    if (prev === null) return this.#whole(listing);
    if (listing.projects === prev.projects) {
      if (listing.serial !== prev.serial) this.#hasNewest = false;
      this.#listing = listing;
      return { changed: [], namesMoved: false };
    }
    const a = prev.projects;
    const b = listing.projects;
    const changed: ProjectListing[] = [];
    const came: ProjectListing[] = [];
    const went: string[] = [];
    let respelled = false;
    let newest = false;
    let i = 0;
    let j = 0;
    // The listing must be in strict name order: each entry that is not the previous listing's is checked against the one before it.
    const inOrder = (k: number): boolean => k === 0 || b[k - 1]!.normalizedName < b[k]!.normalizedName;
    while (i < a.length || j < b.length) {
      const p = a[i];
      const q = b[j];
      if (p !== undefined && p === q) {
        i++;
        j++;
        continue;
      }
      if (q !== undefined && !inOrder(j)) return this.#whole(listing);
      if (q === undefined || (p !== undefined && p.normalizedName < q.normalizedName)) {
        went.push(p!.normalizedName);
        i++;
      } else if (p === undefined || q.normalizedName < p.normalizedName) {
        came.push(q);
        if (q.lastSerial === listing.serial) newest = true;
        j++;
      } else {
        if (p.lastSerial !== q.lastSerial || p.name !== q.name) changed.push(q);
        if (p.name !== q.name) respelled = true;
        if (q.lastSerial === listing.serial) newest = true;
        i++;
        j++;
      }
    }
    for (const q of changed) this.#entries.set(q.normalizedName, q.lastSerial);
    for (const name of went) {
      this.#entries.delete(name);
      this.#log({ seq: this.#seq, name, added: false });
    }
    for (const q of came) {
      this.#entries.set(q.normalizedName, q.lastSerial);
      this.#log({ seq: this.#seq, name: q.normalizedName, added: true });
    }
    this.#hasNewest = listing.serial === prev.serial ? this.#hasNewest : newest;
    this.#listing = listing;
    return { changed: [...changed.map((q) => q.normalizedName), ...went, ...came.map((q) => q.normalizedName)], namesMoved: respelled || went.length > 0 || came.length > 0 };
  }

  /**
   * `listed`, the names of the listing seen at `since` (or a tree root's names, when the tracker
   * was reset after it), brought to the names of the listing seen at `seq`; changes up to `seq`
   * are then forgotten. Null when a listing in between was taken whole: take the names of the
   * one at `seq` instead.
   */
  namesAt(listed: Set<string>, since: number, seq: number): Set<string> | null {
    const between = this.#names.filter((c) => c.seq > since && c.seq <= seq);
    this.#names = this.#names.filter((c) => c.seq > seq);
    if (between.some((c) => 'whole' in c)) return null;
    for (const c of between) {
      if ('whole' in c) continue;
      if (c.added) listed.add(c.name);
      else listed.delete(c.name);
    }
    return listed;
  }

  /** Note a change of names; a log nobody drains stays bounded (as if its first listing had been taken whole). */
  #log(change: NameChange): void {
    if (this.#names.length >= MAX_NAME_CHANGES) this.#names = [{ seq: this.#names[0]!.seq, whole: true }];
    this.#names.push(change);
  }

  #whole(listing: SourceListing): ListingUpdate {
    const entries = new Map<string, number>();
    let newest = false;
    for (const p of listing.projects) {
      entries.set(p.normalizedName, p.lastSerial);
      if (p.lastSerial === listing.serial) newest = true;
    }
    this.#entries = entries;
    this.#hasNewest = newest;
    this.#log({ seq: this.#seq, whole: true });
    // Only a listing in strict name order can be compared with the next in one pass.
    const sorted = listing.projects.every((p, k, all) => k === 0 || all[k - 1]!.normalizedName < p.normalizedName);
    this.#listing = sorted ? listing : null;
    return { changed: null, namesMoved: false };
  }
}
