import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { keyId, signProject, verifyPage } from './signing.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const html = Buffer.from('<!DOCTYPE html><a href="x">x</a>');
const json = Buffer.from('{"files":[]}');

test('a signed page verifies in both encodings', () => {
  const sig = signProject(privateKey, 'demo', 7, html, json);
  assert.equal(sig.key, keyId(publicKey));
  assert.equal(verifyPage(publicKey, sig, { name: 'demo' }, 'html', html), null);
  assert.equal(verifyPage(publicKey, sig, { name: 'demo', minSerial: 7 }, 'json', json), null);
});

test('a modified page, another project, an older serial or another key fail', () => {
  const sig = signProject(privateKey, 'demo', 7, html, json);
  assert.match(verifyPage(publicKey, sig, { name: 'demo' }, 'html', Buffer.from('<!DOCTYPE html><a href="evil">x</a>'))!, /do not match/);
  assert.match(verifyPage(publicKey, sig, { name: 'other' }, 'html', html)!, /for project 'demo'/);
  assert.match(verifyPage(publicKey, sig, { name: 'demo', minSerial: 8 }, 'html', html)!, /older than 8/);
  const other = generateKeyPairSync('ed25519').publicKey;
  assert.match(verifyPage(other, sig, { name: 'demo' }, 'html', html)!, /not the trusted key/);
  // A forged statement: right hash, wrong signature bytes.
  const forged = { ...sig, html: { ...sig.html, signature: Buffer.alloc(64, 1).toString('base64') } };
  assert.match(verifyPage(publicKey, forged, { name: 'demo' }, 'html', html)!, /does not verify/);
  // A replay: the serial in the document raised without re-signing.
  const bumped = { ...sig, serial: 9 };
  assert.match(verifyPage(publicKey, bumped, { name: 'demo', minSerial: 9 }, 'html', html)!, /does not verify/);
});
