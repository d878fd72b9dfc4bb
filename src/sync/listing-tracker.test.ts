import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProjectListing } from '../core/model.js';
import { ListingTracker } from './listing-tracker.js';
import type { SourceListing } from './source.js';

const entry = (name: string, lastSerial: number, display = name): ProjectListing => ({ name: display, normalizedName: name, lastSerial });
const listing = (serial: number, projects: readonly ProjectListing[]): SourceListing => ({ serial, projects, time: null });

/** A listing with `changes` merged in by name, reusing the other entries (as OriginSource builds them). */
function merged(prev: SourceListing, serial: number, changes: Record<string, ProjectListing | null>): SourceListing {
  const byName = new Map(prev.projects.map((p) => [p.normalizedName, p]));
  for (const [name, p] of Object.entries(changes)) {
    if (p === null) byName.delete(name);
    else byName.set(name, p);
  }
  return listing(serial, [...byName.values()].sort((a, b) => (a.normalizedName < b.normalizedName ? -1 : 1)));
}

describe('ListingTracker', () => {
  it('takes the first listing whole, then names only the entries that changed', () => {
    const t = new ListingTracker();
    const l1 = listing(5, [entry('a', 1), entry('b', 5), entry('c', 3)]);
    assert.deepEqual(t.update(l1), { changed: null, namesMoved: false });
    assert.equal(t.entry('b'), 5);
    assert.equal(t.hasNewest, true);

    assert.deepEqual(t.update(listing(5, l1.projects)), { changed: [], namesMoved: false });
    const l2 = merged(l1, 6, { c: entry('c', 6) });
    assert.deepEqual(t.update(l2), { changed: ['c'], namesMoved: false });
    assert.equal(t.entry('c'), 6);
    assert.equal(t.hasNewest, true);

    // A serial that no listed project carries: a project created and removed in between.
    const l3 = listing(8, l2.projects);
    assert.deepEqual(t.update(l3), { changed: [], namesMoved: false });
    assert.equal(t.hasNewest, false);

    const l4 = merged(l3, 10, { a: null, aa: entry('aa', 9), d: entry('d', 10), b: entry('b', 5, 'B') });
    const u = t.update(l4);
    assert.deepEqual([...(u.changed ?? [])].sort(), ['a', 'aa', 'b', 'd']);
    assert.equal(u.namesMoved, true);
    assert.equal(t.entry('a'), undefined);
    assert.equal(t.entry('d'), 10);
    assert.equal(t.hasNewest, true);
  });

  it('a respelled name moves the names; a new serial alone does not', () => {
    const t = new ListingTracker();
    const l1 = listing(2, [entry('a', 1), entry('b', 2)]);
    t.update(l1);
    assert.equal(t.update(merged(l1, 3, { a: entry('a', 3) })).namesMoved, false);
    assert.equal(t.update(merged(l1, 4, { a: entry('a', 4, 'A') })).namesMoved, true);
  });

  it('compares fresh entries by name, and takes a listing out of name order whole', () => {
    const t = new ListingTracker();
    t.update(listing(2, [entry('a', 1), entry('b', 2)]));
    assert.deepEqual(t.update(listing(3, [entry('a', 1), entry('b', 3)])), { changed: ['b'], namesMoved: false });
    assert.deepEqual(t.update(listing(4, [entry('b', 3), entry('a', 4)])), { changed: null, namesMoved: false });
    assert.equal(t.entry('a'), 4);
    // Out of order, it cannot be compared in one pass next time either.
    assert.equal(t.update(listing(4, [entry('b', 3), entry('a', 4)])).changed, null);
  });

  it('brings a set of names from one listing to a later one, or says to take them whole', () => {
    const t = new ListingTracker();
    const l1 = listing(2, [entry('a', 1), entry('b', 2)]);
    t.update(l1);
    const seq1 = t.seq;
    const l2 = merged(l1, 3, { c: entry('c', 3) });
    t.update(l2);
    const l3 = merged(l2, 4, { a: null });
    t.update(l3);
    const seq3 = t.seq;
    t.update(merged(l3, 5, { d: entry('d', 5) }));
    // The first listing was taken whole: names from before it cannot be brought forward.
    assert.equal(t.namesAt(new Set(['x']), 0, seq1), null);
    assert.deepEqual([...t.namesAt(new Set(['a', 'b']), seq1, seq3)!].sort(), ['b', 'c']);
    // Changes up to seq3 are forgotten; the one after it is still there.
    assert.deepEqual([...t.namesAt(new Set(['b', 'c']), seq3, t.seq)!].sort(), ['b', 'c', 'd']);
    t.reset();
    t.update(merged(l3, 6, {}));
    assert.equal(t.namesAt(new Set(), t.seq - 1, t.seq), null, 'after a reset the next listing is taken whole');
  });
});
