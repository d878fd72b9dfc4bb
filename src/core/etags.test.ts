import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { etagHash, etagOfHash, ifNoneMatchHits, strongEtag } from './etags.js';

test('a strong ETag is the page hash, fed whole or in pieces', () => {
  const body = Buffer.from('<!DOCTYPE html>\n');
  assert.equal(strongEtag(body), `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`);
  assert.equal(etagOfHash(etagHash().update(body.subarray(0, 3)).update(body.subarray(3))), strongEtag(body));
  assert.notEqual(strongEtag(Buffer.from('a')), strongEtag(Buffer.from('b')));
});

test('If-None-Match lists, wildcards and weak forms', () => {
  assert.equal(ifNoneMatchHits(undefined, '"a"'), false);
  assert.equal(ifNoneMatchHits('"a"', '"a"'), true);
  assert.equal(ifNoneMatchHits('"b", "a"', '"a"'), true);
  assert.equal(ifNoneMatchHits('W/"a"', '"a"'), true);
  assert.equal(ifNoneMatchHits('*', '"a"'), true);
  assert.equal(ifNoneMatchHits('"ab"', '"a"'), false);
});
