/**
 * PEP 691 content negotiation for the Simple API: which of the three
 * serializations answers a request, from its `Accept` header and `?format=`.
 */

/** The three serializations: v1 JSON, v1 HTML, and the legacy `text/html` alias of v1 HTML. */
export type SimpleFormat = 'json' | 'html' | 'legacy-html';

const CONTENT_TYPES: Readonly<Record<SimpleFormat, string>> = {
  json: 'application/vnd.pypi.simple.v1+json',
  html: 'application/vnd.pypi.simple.v1+html',
  'legacy-html': 'text/html',
};

/**
 * Media types naming each format. `latest` is PEP 691's alias for the newest
 * version; the response still says v1.
 */
const NAMES: Readonly<Record<SimpleFormat, readonly string[]>> = {
  json: ['application/vnd.pypi.simple.v1+json', 'application/vnd.pypi.simple.latest+json'],
  html: ['application/vnd.pypi.simple.v1+html', 'application/vnd.pypi.simple.latest+html'],
  'legacy-html': ['text/html'],
};

/**
 * Server preference when q-values tie. Warehouse offers text/html first, so
 * `*\/*` (curl, requests, old pip) and header-less clients get the page every
 * client understands; pip and uv rank JSON above HTML with q-values and get JSON.
 */
const PREFERENCE: readonly SimpleFormat[] = ['legacy-html', 'html', 'json'];

/** The Content-Type for a format (without charset; the HTTP layer adds it for HTML). */
export function contentTypeOf(format: SimpleFormat): string {
  return CONTENT_TYPES[format];
}

function formatNamed(mediaType: string): SimpleFormat | null {
  const wanted = mediaType.trim().toLowerCase();
  for (const format of PREFERENCE) if (NAMES[format].includes(wanted)) return format;
  return null;
}

interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  /** Quality in thousandths (0–1000), so comparisons are exact. */
  readonly q: number;
}

const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/** One element of an Accept header, or null when it is malformed. */
function parseRange(element: string): MediaRange | null {
  const [range = '', ...params] = element.split(';');
  const slash = range.indexOf('/');
  if (slash < 0) return null;
  const type = range.slice(0, slash).trim().toLowerCase();
  const subtype = range.slice(slash + 1).trim().toLowerCase();
  if (!TOKEN.test(type) || !TOKEN.test(subtype) || (type === '*' && subtype !== '*')) return null;
  let q = 1000;
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue;
    const value = param.slice(eq + 1).trim();
    if (!QVALUE.test(value)) return null;
    q = Math.round(Number(value) * 1000);
    // Parameters after q are accept-extensions, not part of the media range.
    break;
  }
  return { type, subtype, q };
}

/** How specifically a range names a format: 3 exact, 2 `type/*`, 1 `*\/*`, 0 not at all. */
function specificity(range: MediaRange, format: SimpleFormat): number {
  if (range.type === '*') return 1;
  let best = 0;
  for (const name of NAMES[format]) {
    const [type, subtype] = name.split('/') as [string, string];
    if (range.type !== type) continue;
    if (range.subtype === subtype) return 3;
    if (range.subtype === '*') best = 2;
  }
  return best;
}

/**
 * Picks the serialization for a Simple API request, or null when the client
 * accepts none of them (answer 406).
 *
 * - `formatParam` (PEP 691's optional `?format=`) names one content type and
 *   wins over `Accept`; an unknown value gives null rather than a silent default.
 * - A missing, empty or wholly unparseable `Accept` means `text/html`, as
 *   Warehouse does (PEP 691 treats absence as `*\/*`).
 * - Each format takes the q of the most specific range that matches it
 *   (so `*\/*;q=0.1, text/html;q=0` excludes only text/html); q=0 is refusal;
 *   the highest q wins, ties broken by {@link PREFERENCE}.
 */
export function negotiateSimpleFormat(accept: string | undefined, formatParam: string | undefined): SimpleFormat | null {
  if (formatParam !== undefined && formatParam.trim() !== '') return formatNamed(formatParam);
  if (accept === undefined) return 'legacy-html';

  const ranges: MediaRange[] = [];
  for (const element of accept.split(',')) {
    if (element.trim() === '') continue;
    const range = parseRange(element);
    if (range !== null) ranges.push(range);
  }
  // An empty or garbage header says nothing; RFC 9110 lets a server ignore it.
  if (ranges.length === 0) return 'legacy-html';

  let chosen: SimpleFormat | null = null;
  let chosenQ = 0;
  for (const format of PREFERENCE) {
    let bestSpecificity = 0;
    let q = 0;
    for (const range of ranges) {
      const s = specificity(range, format);
      // The first range at the highest specificity decides, as in WebOb (Warehouse).
      if (s > bestSpecificity) {
        bestSpecificity = s;
        q = range.q;
      }
    }
    if (q > chosenQ) {
      chosen = format;
      chosenQ = q;
    }
  }
  return chosen;
}
