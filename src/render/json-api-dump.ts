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

function asciiString(s: string): string {
  // JSON.stringify escapes controls, quotes, backslashes and lone surrogates alike Python; the rest is ensure_ascii.
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function dumpEntries(entries: [string, JsonValue][]): string {
  entries.sort((a, b) => compareCodePoints(a[0], b[0]));
  return '{' + entries.map(([k, v]) => asciiString(k) + ':' + dumpJson(v)).join(',') + '}';
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
