/**
 * The shape of a Warehouse JSON API response, recorded from Warehouse's
 * `legacy/api/json.py` and its unit tests (key names and value types only): the
 * contract our renderer is checked against, key by key.
 *
 * A shape is a type name (`'string'`, `'int'`, `'boolean'`, `'null'`, or a union
 * such as `'string|null'`), `'string[]'`, `'dict<string>'` (an object of strings),
 * an object shape (exactly these keys), `[shape]` (an array of shape), or
 * `{ '*': shape }` (an object whose every value has that shape).
 */
export type Shape = string | readonly [Shape] | { readonly [key: string]: Shape };

/** One distribution file, in `urls` and in each `releases` entry. */
export const WAREHOUSE_FILE_SHAPE = {
  comment_text: 'string|null',
  digests: { blake2b_256: 'string', md5: 'string', sha256: 'string' },
  downloads: 'int',
  filename: 'string',
  has_sig: 'boolean',
  md5_digest: 'string',
  packagetype: 'string',
  python_version: 'string',
  requires_python: 'string|null',
  size: 'int',
  upload_time: 'string',
  upload_time_iso_8601: 'string',
  url: 'string',
  yanked: 'boolean',
  yanked_reason: 'string|null',
} as const satisfies Shape;

export const WAREHOUSE_INFO_SHAPE = {
  author: 'string|null',
  author_email: 'string|null',
  bugtrack_url: 'null',
  classifiers: 'string[]',
  description: 'string',
  description_content_type: 'string|null',
  docs_url: 'string|null',
  download_url: 'string|null',
  downloads: { last_day: 'int', last_month: 'int', last_week: 'int' },
  dynamic: 'string[]|null',
  home_page: 'string|null',
  keywords: 'string|null',
  license: 'string|null',
  license_expression: 'string|null',
  license_files: 'string[]|null',
  maintainer: 'string|null',
  maintainer_email: 'string|null',
  name: 'string',
  package_url: 'string',
  platform: 'string|null',
  project_url: 'string',
  project_urls: 'dict<string>|null',
  provides_extra: 'string[]|null',
  release_url: 'string',
  requires_dist: 'string[]|null',
  requires_python: 'string|null',
  summary: 'string|null',
  version: 'string',
  yanked: 'boolean',
  yanked_reason: 'string|null',
} as const satisfies Shape;

/** `vulnerabilities` entries (always empty here: we have no advisory source). */
export const WAREHOUSE_VULNERABILITY_SHAPE = {
  aliases: 'string[]',
  details: 'string|null',
  fixed_in: 'string[]',
  id: 'string',
  link: 'string',
  source: 'string',
  summary: 'string|null',
  withdrawn: 'string|null',
} as const satisfies Shape;

/** `GET /pypi/<name>/json`. */
export const WAREHOUSE_PROJECT_SHAPE = {
  info: WAREHOUSE_INFO_SHAPE,
  last_serial: 'int',
  releases: { '*': [WAREHOUSE_FILE_SHAPE] },
  urls: [WAREHOUSE_FILE_SHAPE],
  vulnerabilities: [WAREHOUSE_VULNERABILITY_SHAPE],
} as const satisfies Shape;

/** `GET /pypi/<name>/<version>/json`: the same without `releases` (PyPI dropped it there in 2022). */
export const WAREHOUSE_RELEASE_SHAPE = {
  info: WAREHOUSE_INFO_SHAPE,
  last_serial: 'int',
  urls: [WAREHOUSE_FILE_SHAPE],
  vulnerabilities: [WAREHOUSE_VULNERABILITY_SHAPE],
} as const satisfies Shape;

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.every((v) => typeof v === 'string') ? 'string[]' : 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'object') {
    return Object.values(value as object).every((v) => typeof v === 'string') ? 'dict<string>' : 'object';
  }
  return typeof value;
}

/**
 * Every place where `value` departs from `shape`: a missing or extra key, or a
 * value of another type. Empty when it conforms.
 */
export function shapeMismatches(value: unknown, shape: Shape, path = '$'): string[] {
  if (typeof shape === 'string') {
    const actual = typeOf(value);
    // An empty list is a `string[]`; an empty object a `dict<string>`.
    return shape.split('|').includes(actual) ? [] : [`${path}: expected ${shape}, got ${actual}`];
  }
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return [`${path}: expected an array, got ${typeOf(value)}`];
    return value.flatMap((v, i) => shapeMismatches(v, shape[0] as Shape, `${path}[${i}]`));
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${path}: expected an object, got ${typeOf(value)}`];
  const object = value as Record<string, unknown>;
  const fields = shape as { readonly [key: string]: Shape };
  if ('*' in fields) {
    return Object.entries(object).flatMap(([k, v]) => shapeMismatches(v, fields['*']!, `${path}[${JSON.stringify(k)}]`));
  }
  const out: string[] = [];
  for (const key of Object.keys(fields)) {
    if (!(key in object)) out.push(`${path}.${key}: missing`);
    else out.push(...shapeMismatches(object[key], fields[key]!, `${path}.${key}`));
  }
  for (const key of Object.keys(object)) if (!(key in fields)) out.push(`${path}.${key}: not in Warehouse's response`);
  return out;
}
