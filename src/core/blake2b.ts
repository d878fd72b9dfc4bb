/**
 * BLAKE2b (RFC 7693) with a 32-byte digest, unkeyed: the `blake2_256_digest`
 * of every upload. node:crypto offers only the 64-byte `blake2b512` (OpenSSL
 * 3.0 cannot shorten it, and a shorter BLAKE2b is not a truncated longer one),
 * and BLAKE2b in plain JavaScript must emulate its 64-bit words with pairs of
 * 32-bit ones, which made it the costliest step of reading an upload. So the
 * compression function is WebAssembly, whose i64 operations are the native
 * ones; the module is written out below (a fully unrolled `compress`) rather
 * than shipped as an opaque binary.
 */

/** The part of the WebAssembly global this file uses (its types live in lib.dom, which this project leaves out). */
declare const WebAssembly: {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: Record<string, unknown> };
};

const IV = [
  0x6a09e667f3bcc908n, 0xbb67ae8584caa73bn, 0x3c6ef372fe94f82bn, 0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n, 0x9b05688c2b3e6c1fn, 0x1f83d9abfb41bd6bn, 0x5be0cd19137e2179n,
] as const;

const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
] as const;

const BLOCK = 128;
const OUT_LEN = 32;
/** Memory layout of the module: state h (64 bytes), then the input blocks. */
const H_AT = 0;
const INPUT_AT = 64;
const INPUT_BLOCKS = 511;

// WebAssembly opcodes and types used below.
const I32 = 0x7f;
const I64 = 0x7e;
const OP = {
  localGet: 0x20,
  localSet: 0x21,
  i32Const: 0x41,
  i64Const: 0x42,
  i64Load: 0x29,
  i64Store: 0x37,
  i64Add: 0x7c,
  i64Sub: 0x7d,
  i64Xor: 0x85,
  i64Rotr: 0x8a,
  i64ExtendI32U: 0xad,
  end: 0x0b,
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 64-bit pattern (wasm's i64.const reads it as two's complement). */
function sleb64(value: bigint): number[] {
  let v = BigInt.asIntN(64, value);
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Buffer.from(s, 'ascii')];
}

/**
 * `compress(ptr: i32, t: i64, last: i32)`: one compression of the block at
 * `ptr` into the state at H_AT, with byte counter `t` (the count including this
 * block; inputs stay far below 2^64 bytes) and the final-block flag `last`.
 */
function compressBody(): number[] {
  // Locals: params 0 ptr, 1 t, 2 last; then v0..v15 at 3..18 and m0..m15 at 19..34.
  const v = (i: number): number => 3 + i;
  const m = (i: number): number => 19 + i;
  const code: number[] = [];
  const get = (l: number): void => void code.push(OP.localGet, l);
  const set = (l: number): void => void code.push(OP.localSet, l);
  const memarg = (offset: number): number[] => [3, ...uleb(offset)];

  for (let i = 0; i < 8; i++) {
    code.push(OP.i32Const, 0, OP.i64Load, ...memarg(H_AT + 8 * i));
    set(v(i));
  }
  for (let i = 0; i < 8; i++) {
    code.push(OP.i64Const, ...sleb64(IV[i]!));
    if (i === 4) {
      get(1);
      code.push(OP.i64Xor);
    } else if (i === 6) {
      // v14 ^= 0 - last: all ones for the final block.
      code.push(OP.i64Const, 0);
      get(2);
      code.push(OP.i64ExtendI32U, OP.i64Sub, OP.i64Xor);
    }
    set(v(8 + i));
  }
  for (let i = 0; i < 16; i++) {
    get(0);
    code.push(OP.i64Load, ...memarg(8 * i));
    set(m(i));
  }
  const addInto = (a: number, b: number, x: number): void => {
    get(v(a));
    get(v(b));
    code.push(OP.i64Add);
    get(m(x));
    code.push(OP.i64Add);
    set(v(a));
  };
  const xorRot = (d: number, a: number, bits: number): void => {
    get(v(d));
    get(v(a));
    code.push(OP.i64Xor, OP.i64Const, ...sleb64(BigInt(bits)), OP.i64Rotr);
    set(v(d));
  };
  const add = (c: number, d: number): void => {
    get(v(c));
    get(v(d));
    code.push(OP.i64Add);
    set(v(c));
  };
  const g = (a: number, b: number, c: number, d: number, x: number, y: number): void => {
    addInto(a, b, x);
    xorRot(d, a, 32);
    add(c, d);
    xorRot(b, c, 24);
    addInto(a, b, y);
    xorRot(d, a, 16);
    add(c, d);
    xorRot(b, c, 63);
  };
  for (let round = 0; round < 12; round++) {
    const s = SIGMA[round % 10]!;
    g(0, 4, 8, 12, s[0], s[1]);
    g(1, 5, 9, 13, s[2], s[3]);
    g(2, 6, 10, 14, s[4], s[5]);
    g(3, 7, 11, 15, s[6], s[7]);
    g(0, 5, 10, 15, s[8], s[9]);
    g(1, 6, 11, 12, s[10], s[11]);
    g(2, 7, 8, 13, s[12], s[13]);
    g(3, 4, 9, 14, s[14], s[15]);
  }
  for (let i = 0; i < 8; i++) {
    code.push(OP.i32Const, 0, OP.i32Const, 0, OP.i64Load, ...memarg(H_AT + 8 * i));
    get(v(i));
    code.push(OP.i64Xor);
    get(v(i + 8));
    code.push(OP.i64Xor, OP.i64Store, ...memarg(H_AT + 8 * i));
  }
  code.push(OP.end);
  const locals = [1, 32, I64];
  return [...uleb(locals.length + code.length), ...locals, ...code];
}

function buildModule(): Uint8Array {
  const type = section(1, [1, 0x60, 3, I32, I64, I32, 0]);
  const func = section(3, [1, 0]);
  const memory = section(5, [1, 0, 1]);
  const exports = section(7, [2, ...name('compress'), 0, 0, ...name('memory'), 2, 0]);
  const code = section(10, [1, ...compressBody()]);
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...type, ...func, ...memory, ...exports, ...code]);
}

interface Compressor {
  readonly compress: (ptr: number, t: bigint, last: number) => void;
  readonly memory: Uint8Array;
}

let shared: Compressor | null = null;

/** One instance for the process: hashing is synchronous, so no two hashes ever use its memory at once. */
function compressor(): Compressor {
  if (shared) return shared;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(buildModule()));
  const { compress, memory } = instance.exports as { compress: Compressor['compress']; memory: { readonly buffer: ArrayBuffer } };
  shared = { compress, memory: new Uint8Array(memory.buffer) };
  return shared;
}

/** The parameter block of an unkeyed 32-byte BLAKE2b, folded into the first IV word. */
function initialState(): Uint8Array {
  const h = new Uint8Array(64);
  const view = new DataView(h.buffer);
  for (let i = 0; i < 8; i++) view.setBigUint64(8 * i, IV[i]!, true);
  view.setBigUint64(0, IV[0]! ^ BigInt(0x01010000 | OUT_LEN), true);
  return h;
}

/** Incremental BLAKE2b-256. The state lives here; the module's memory is borrowed for each call. */
export class Blake2b256 {
  readonly #h = initialState();
  /** Bytes not yet compressed: the last block waits, since only the final one is flagged. */
  readonly #pending = new Uint8Array(BLOCK);
  #pendingLength = 0;
  #total = 0n;
  #done = false;

  update(data: Uint8Array): this {
    if (this.#done) throw new Error('BLAKE2b: update after digest');
    if (data.length === 0) return this;
    const c = compressor();
    const mem = c.memory;
    mem.set(this.#h, H_AT);
    let offset = 0;
    // Top up the pending block; compress it only once more data is known to follow.
    if (this.#pendingLength > 0) {
      const take = Math.min(BLOCK - this.#pendingLength, data.length);
      this.#pending.set(data.subarray(0, take), this.#pendingLength);
      this.#pendingLength += take;
      offset = take;
      if (offset === data.length) {
        return this;
      }
      mem.set(this.#pending, INPUT_AT);
      this.#total += BigInt(BLOCK);
      c.compress(INPUT_AT, this.#total, 0);
      this.#pendingLength = 0;
    }
    // Whole blocks straight from `data`, keeping back the last one (or a partial one).
    while (data.length - offset > BLOCK) {
      const blocks = Math.min(INPUT_BLOCKS, Math.floor((data.length - offset - 1) / BLOCK));
      mem.set(data.subarray(offset, offset + blocks * BLOCK), INPUT_AT);
      for (let b = 0; b < blocks; b++) {
        this.#total += BigInt(BLOCK);
        c.compress(INPUT_AT + b * BLOCK, this.#total, 0);
      }
      offset += blocks * BLOCK;
    }
    this.#pending.set(data.subarray(offset), 0);
    this.#pendingLength = data.length - offset;
    this.#h.set(mem.subarray(H_AT, H_AT + 64));
    return this;
  }

  digest(): Uint8Array {
    if (this.#done) throw new Error('BLAKE2b: digest called twice');
    this.#done = true;
    const c = compressor();
    const mem = c.memory;
    mem.set(this.#h, H_AT);
    mem.fill(0, INPUT_AT, INPUT_AT + BLOCK);
    mem.set(this.#pending.subarray(0, this.#pendingLength), INPUT_AT);
    c.compress(INPUT_AT, this.#total + BigInt(this.#pendingLength), 1);
    return mem.slice(H_AT, H_AT + OUT_LEN);
  }
}

/** BLAKE2b-256 of `data` in one call. */
export function blake2b256(data: Uint8Array): Uint8Array {
  return new Blake2b256().update(data).digest();
}
