import { test } from 'node:test';
import assert from 'node:assert/strict';
import { strongEtag } from '../core/etags.js';
import { describePage, PageDescriber } from './page-meta.js';

test('the serial of each kind of page', () => {
  assert.equal(describePage(Buffer.from('{"meta":{"_last-serial":42,"api-version":"1.4"},"name":"x","files":[]}')).serial, 42);
  assert.equal(describePage(Buffer.from('<!DOCTYPE html>\n<html><body></body></html>\n<!--SERIAL 17-->\n')).serial, 17);
  assert.equal(describePage(Buffer.from('{"info": {"project_urls": {"last_serial": "https://x/"}}, "last_serial": 9, "releases": {}}')).serial, 9);
  assert.equal(describePage(Buffer.from('{"version":1,"name":"x","serial":5,"key":"k"}')).serial, 5);
  assert.equal(describePage(Buffer.from('<!DOCTYPE html>\n<html><body><a href="x/">x</a></body></html>\n')).serial, null);
  // Quotes inside JSON strings are escaped, so a description cannot fake the member.
  assert.equal(describePage(Buffer.from('{"info": {"description": "\\"last_serial\\": 1"}, "last_serial": 3}')).serial, 3);
});

test('pieces give the same meta as the whole, whatever the cuts', () => {
  const body = Buffer.from(`{"info": {"summary": "${'y'.repeat(300)}"}, "last_serial": 123456, "releases": {}}`);
  const html = Buffer.from(`<html>${'z'.repeat(200)}</html>\n<!--SERIAL 77-->\n`);
  for (const page of [body, html]) {
    const whole = describePage(page);
    assert.equal(whole.etag, strongEtag(page));
    assert.equal(whole.size, page.length);
    for (const cut of [1, 7, 64, 100, page.length - 3]) {
      const d = new PageDescriber();
      for (let i = 0; i < page.length; i += cut) d.update(page.subarray(i, i + cut));
      assert.deepEqual(d.finish(), whole, `cut ${cut}`);
    }
  }
});
