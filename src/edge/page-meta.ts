/**
 * What the edge must know of a page before it sends the first byte: its strong
 * ETag (the origin's, see core/etags.ts) and the serial its bytes carry, read
 * in one pass so that a page too large to keep in memory is read once per
 * version. The serial is the first JSON `"_last-serial"`, `"last_serial"` or
 * `"serial"` member with a number (Simple JSON's `meta`, which comes first; the
 * JSON API's top-level `last_serial`; a signature's `serial`: inside JSON
 * strings a quote is always escaped, so text cannot fake one), else the HTML
 * trailer `<!--SERIAL N-->` Warehouse ends its project pages with.
 */
import type { Hash } from 'node:crypto';
import { etagHash, etagOfHash } from '../core/etags.js';

export interface PageMeta {
  readonly etag: string;
  /** The serial the page's bytes carry, or null (the root's HTML, `serverkey`, …). */
  readonly serial: number | null;
  readonly size: number;
}

const JSON_SERIAL = /"(?:_last-serial|last_serial|serial)":\s*(\d{1,15})(?=[,}\s])/;
const HTML_TRAILER = /<!--SERIAL (\d{1,15})-->\s*$/;
/** Bytes kept between chunks so that a member split across two is still found. */
const CARRY = 48;
/** Bytes of the end kept for the HTML trailer. */
const TAIL = 64;

/** Feed a page's bytes in order, then `finish()`. */
export class PageDescriber {
  readonly #hash: Hash = etagHash();
  #size = 0;
  #carry = '';
  #serial: number | null = null;
  #tail: Buffer = Buffer.alloc(0);

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    if (this.#serial === null) {
      const text = this.#carry + chunk.toString('latin1');
      const m = JSON_SERIAL.exec(text);
      if (m) this.#serial = Number(m[1]);
      else this.#carry = text.slice(-CARRY);
    }
    // Copied: a reader may reuse its buffer for the next chunk.
    this.#tail = Buffer.from(chunk.length >= TAIL ? chunk.subarray(chunk.length - TAIL) : Buffer.concat([this.#tail, chunk]).subarray(-TAIL));
  }

  finish(): PageMeta {
    let serial = this.#serial;
    if (serial === null) {
      const m = HTML_TRAILER.exec(this.#tail.toString('latin1'));
      if (m) serial = Number(m[1]);
    }
    return { etag: etagOfHash(this.#hash), serial, size: this.#size };
  }
}

/** The ETag and serial of a whole page. */
export function describePage(body: Buffer): PageMeta {
  const d = new PageDescriber();
  d.update(body);
  return d.finish();
}
