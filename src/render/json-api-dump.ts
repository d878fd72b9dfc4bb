/**
 * JSON serialized the way Warehouse's renderer does it (Python's `json.dumps`
 * with `sort_keys=True`, compact separators and `ensure_ascii`), so that our
 * JSON API bytes match PyPI's for the same data and do not depend on the order
 * objects were built in.
 */

/** A JSON value; a Map is a dict whose keys may be anything (no `__proto__` surprises). */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | ReadonlyMap<string, JsonValue>
  | { readonly [key: string]: JsonValue };

/** Python compares str by code point; JS `<` by UTF-16 unit, which differs above U+FFFF. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Printable ASCII but `"` and `\\`: a string JSON carries as it is, between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function asciiString(s: string): string {
  // Most strings (keys, names, URLs, hashes) need no escape at all.
  if (PLAIN.test(s)) return '"' + s + '"';
  // JSON.stringify escapes controls, quotes, backslashes and lone surrogates alike Python; the rest is ensure_ascii.
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function dumpEntries(entries: [string, JsonValue][]): string {
  entries.sort((a, b) => compareCodePoints(a[0], b[0]));
  return '{' + entries.map(([k, v]) => asciiString(k) + ':' + dumpJson(v)).join(',') + '}';
}

/**
 * An object whose values are serialized already (by dumpJson), as dumpJson serializes one:
 * keys sorted, so pieces shared by several documents are serialized once.
 */
export function dumpSerializedEntries(entries: Iterable<readonly [string, string]>): string {
  const sorted = [...entries].sort((a, b) => compareCodePoints(a[0], b[0]));
  return '{' + sorted.map(([k, v]) => asciiString(k) + ':' + v).join(',') + '}';
}

/** Serialize like `json.dumps(value, sort_keys=True, separators=(",", ":"))`. */
export function dumpJson(value: JsonValue): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError('JSON cannot carry a non-finite number');
      return String(value);
    case 'string':
      return asciiString(value);
  }
  if (Array.isArray(value)) return '[' + (value as readonly JsonValue[]).map(dumpJson).join(',') + ']';
  if (value instanceof Map) return dumpEntries([...(value as ReadonlyMap<string, JsonValue>).entries()]);
  return dumpEntries(Object.entries(value as { readonly [key: string]: JsonValue }));
}
