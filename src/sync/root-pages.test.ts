import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProjectListing } from '../core/model.js';
import { renderRootHtml } from '../render/simple-html.js';
import { renderRootJson } from '../render/simple-json.js';
import { digestChunks, rootHtmlChunks, rootHtmlDigest, rootJsonChunks } from './root-pages.js';
import { sha256Hex } from '../core/hashes.js';

const joined = (chunks: Iterable<Buffer>): string => Buffer.concat([...chunks]).toString('utf8');

/** A small deterministic random sequence. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('root pages', () => {
  it("render the origin's bytes through additions, removals, new serials and respellings that keep the other entries", () => {
    const rnd = random(7);
    const names = ['a', 'ab', 'ab-c', 'abc', 'abcd', 'abd', 'b', 'ba', 'bab', 'babel', 'zope.interface', 'zz', 'Über'.toLowerCase()];
    for (let i = 0; i < 300; i++) names.push(`p${Math.floor(rnd() * 5000)}-x`);
    let projects: ProjectListing[] = [...new Set(names)].sort().map((n, i) => ({ name: n, normalizedName: n, lastSerial: i + 1 }));
    let serial = projects.length;
    for (let round = 0; round < 60; round++) {
      assert.equal(joined(rootJsonChunks(projects, serial)), renderRootJson(projects, serial), `JSON, round ${round}`);
      assert.equal(joined(rootHtmlChunks(projects)), renderRootHtml(projects), `HTML, round ${round}`);
      assert.equal(rootHtmlDigest([...projects]), sha256Hex(renderRootHtml(projects)));
      // The next listing keeps the entries that did not change, as OriginSource's merge does.
      const next = [...projects];
      const k = Math.floor(rnd() * next.length);
      const what = round % 5;
      serial++;
      if (what === 0) next.splice(k, 1);
      else if (what === 1) next.splice(0, 1);
      else if (what === 2) next[k] = { ...next[k]!, lastSerial: serial };
      else if (what === 3) next[k] = { ...next[k]!, name: next[k]!.name.toUpperCase() };
      else {
        const name = `${next[k]!.normalizedName}-new${round}`;
        next.push({ name, normalizedName: name, lastSerial: serial });
        next.sort((x, y) => (x.normalizedName < y.normalizedName ? -1 : 1));
      }
      if (round === 30) next.unshift({ name: '0-first', normalizedName: '0-first', lastSerial: serial });
      projects = next;
    }
    assert.equal(joined(rootJsonChunks([], 3)), renderRootJson([], 3));
    assert.equal(joined(rootHtmlChunks([])), renderRootHtml([]));
    assert.equal(digestChunks(rootHtmlChunks(projects)), sha256Hex(renderRootHtml(projects)));
  });
});
