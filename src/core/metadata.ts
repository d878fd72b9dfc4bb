/**
 * Core metadata (the METADATA of a wheel, the PKG-INFO of an sdist), versions
 * 1.0 to 2.5: parsing of the RFC 822 style text, validation of the fields the
 * index relies on, and conversion to what a release keeps. No I/O.
 * https://packaging.python.org/specifications/core-metadata/
 */
import { PyedgeError } from './errors.js';
import type { ReleaseMetadata } from './model.js';
import { isValidName } from './names.js';
import { isValidVersion } from './versions.js';

/** The Metadata-Version values the index accepts, oldest first. */
export const METADATA_VERSIONS = ['1.0', '1.1', '1.2', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5'] as const;

export type MetadataVersion = (typeof METADATA_VERSIONS)[number];

/**
 * The fields of one core metadata file. Single-use fields are null when absent
 * (or `UNKNOWN`, which distutils wrote for "no value"); multi-use fields are
 * lists in file order. Unknown headers are left out.
 */
export interface CoreMetadata {
  /** `Metadata-Version` as written (validate before trusting it). */
  readonly metadataVersion: string | null;
  readonly name: string | null;
  readonly version: string | null;
  readonly summary: string | null;
  /** The body after the headers (2.1+), else the `Description` header, unfolded. */
  readonly description: string | null;
  readonly descriptionContentType: string | null;
  readonly keywords: string | null;
  readonly homePage: string | null;
  readonly downloadUrl: string | null;
  readonly author: string | null;
  readonly authorEmail: string | null;
  readonly maintainer: string | null;
  readonly maintainerEmail: string | null;
  /** Free-text `License`; folded lines are kept as lines. */
  readonly license: string | null;
  /** SPDX `License-Expression` (2.4+). */
  readonly licenseExpression: string | null;
  readonly licenseFiles: readonly string[];
  readonly classifiers: readonly string[];
  readonly requiresPython: string | null;
  readonly requiresDist: readonly string[];
  readonly requiresExternal: readonly string[];
  readonly providesExtra: readonly string[];
  readonly providesDist: readonly string[];
  readonly obsoletesDist: readonly string[];
  /** `Project-URL` entries as written: `Label, URL`. */
  readonly projectUrls: readonly string[];
  readonly platforms: readonly string[];
  readonly supportedPlatforms: readonly string[];
  readonly dynamic: readonly string[];
  /** `Import-Name` (2.5); an empty entry means "no import names" and is kept. */
  readonly importNames: readonly string[];
  /** `Import-Namespace` (2.5). */
  readonly importNamespaces: readonly string[];
}

type SingleKey =
  | 'metadataVersion'
  | 'name'
  | 'version'
  | 'summary'
  | 'description'
  | 'descriptionContentType'
  | 'keywords'
  | 'homePage'
  | 'downloadUrl'
  | 'author'
  | 'authorEmail'
  | 'maintainer'
  | 'maintainerEmail'
  | 'license'
  | 'licenseExpression'
  | 'requiresPython';

type MultiKey =
  | 'licenseFiles'
  | 'classifiers'
  | 'requiresDist'
  | 'requiresExternal'
  | 'providesExtra'
  | 'providesDist'
  | 'obsoletesDist'
  | 'projectUrls'
  | 'platforms'
  | 'supportedPlatforms'
  | 'dynamic'
  | 'importNames'
  | 'importNamespaces';

const SINGLE: Readonly<Record<string, SingleKey>> = {
  'metadata-version': 'metadataVersion',
  name: 'name',
  version: 'version',
  summary: 'summary',
  description: 'description',
  'description-content-type': 'descriptionContentType',
  keywords: 'keywords',
  'home-page': 'homePage',
  'download-url': 'downloadUrl',
  author: 'author',
  'author-email': 'authorEmail',
  maintainer: 'maintainer',
  'maintainer-email': 'maintainerEmail',
  license: 'license',
  'license-expression': 'licenseExpression',
  'requires-python': 'requiresPython',
};

const MULTI: Readonly<Record<string, MultiKey>> = {
  'license-file': 'licenseFiles',
  classifier: 'classifiers',
  'requires-dist': 'requiresDist',
  'requires-external': 'requiresExternal',
  'provides-extra': 'providesExtra',
  'provides-dist': 'providesDist',
  'obsoletes-dist': 'obsoletesDist',
  'project-url': 'projectUrls',
  platform: 'platforms',
  'supported-platform': 'supportedPlatforms',
  dynamic: 'dynamic',
  'import-name': 'importNames',
  // Early drafts of PEP 794 used the plural spellings.
  'import-names': 'importNames',
  'import-namespace': 'importNamespaces',
  'import-namespaces': 'importNamespaces',
};

/** Fields whose folded lines are text lines, not one wrapped logical line. */
const MULTILINE_TEXT = new Set<SingleKey>(['description', 'license', 'summary']);

/** Fields where `UNKNOWN` is a real value, not distutils' placeholder. */
const UNKNOWN_IS_VALUE = new Set<SingleKey>(['metadataVersion', 'name', 'version']);

// As Python's email parser: printable ASCII except ':' and space, then ':'.
const HEADER_LINE = /^([\x21-\x39\x3b-\x7e]+):(.*)$/;

interface RawHeader {
  readonly name: string;
  readonly first: string;
  readonly rest: string[];
}

/**
 * Parse core metadata text. Tolerant: never throws; header names are
 * case-insensitive, the first occurrence of a single-use field wins, and
 * unknown headers are ignored. Check the result with validateCoreMetadata.
 */
export function parseCoreMetadata(text: string): CoreMetadata {
  const lines = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n').split('\n');
  const headers: RawHeader[] = [];
  let i = 0;
  let bodyStart = lines.length;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') {
      bodyStart = i + 1;
      break;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      headers[headers.length - 1]?.rest.push(line);
      continue;
    }
    const m = HEADER_LINE.exec(line);
    if (!m) {
      // Python's email parser starts the body at the first non-header line; do the same.
      bodyStart = i;
      break;
    }
    headers.push({ name: m[1]!.toLowerCase(), first: m[2]!, rest: [] });
  }

  const single: Partial<Record<SingleKey, string | null>> = {};
  const multi: Record<MultiKey, string[]> = {
    licenseFiles: [],
    classifiers: [],
    requiresDist: [],
    requiresExternal: [],
    providesExtra: [],
    providesDist: [],
    obsoletesDist: [],
    projectUrls: [],
    platforms: [],
    supportedPlatforms: [],
    dynamic: [],
    importNames: [],
    importNamespaces: [],
  };

  for (const h of headers) {
    const singleKey = SINGLE[h.name];
    if (singleKey !== undefined) {
      if (singleKey in single) continue;
      const value = MULTILINE_TEXT.has(singleKey) ? unfoldText(h.first, h.rest) : unfoldLine(h.first, h.rest);
      const absent = value === '' || (value === 'UNKNOWN' && !UNKNOWN_IS_VALUE.has(singleKey));
      single[singleKey] = absent ? null : value;
      continue;
    }
    const multiKey = MULTI[h.name];
    if (multiKey === undefined) continue;
    const value = unfoldLine(h.first, h.rest);
    if (multiKey === 'importNames' || multiKey === 'importNamespaces') {
      multi[multiKey].push(value);
    } else if (value !== '' && !(multiKey === 'platforms' && value === 'UNKNOWN')) {
      multi[multiKey].push(value);
    }
  }

  const body = lines.slice(bodyStart).join('\n');
  const headerDescription = single.description ?? null;
  const bodyVersionIndex = METADATA_VERSIONS.indexOf('2.1');
  const versionIndex = versionIndexOf(single.metadataVersion ?? null);
  // The body is the description from 2.1 on; before that, use it only if there is no header.
  const useBody = body.trim() !== '' && (versionIndex >= bodyVersionIndex || headerDescription === null);

  return {
    metadataVersion: single.metadataVersion ?? null,
    name: single.name ?? null,
    version: single.version ?? null,
    summary: single.summary ?? null,
    description: useBody ? body : headerDescription,
    descriptionContentType: single.descriptionContentType ?? null,
    keywords: single.keywords ?? null,
    homePage: single.homePage ?? null,
    downloadUrl: single.downloadUrl ?? null,
    author: single.author ?? null,
    authorEmail: single.authorEmail ?? null,
    maintainer: single.maintainer ?? null,
    maintainerEmail: single.maintainerEmail ?? null,
    license: single.license ?? null,
    licenseExpression: single.licenseExpression ?? null,
    requiresPython: single.requiresPython ?? null,
    ...multi,
  };
}

/** Join a folded structured value (RFC 822 unfolding): one logical line. */
function unfoldLine(first: string, rest: readonly string[]): string {
  return [first, ...rest]
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
}

/**
 * Join a folded text value keeping its lines. Writers indent continuation
 * lines by 8 spaces (setuptools) or by 7 spaces and a `|` (the spec's way to
 * keep blank and indented lines); undo whichever was used.
 */
function unfoldText(first: string, rest: readonly string[]): string {
  const head = first.trim();
  if (rest.length === 0) return head;
  const nonBlank = rest.filter((l) => l.trim() !== '');
  let body: string[];
  if (nonBlank.length > 0 && nonBlank.every((l) => /^[ \t]*\|/.test(l))) {
    body = rest.map((l) => (l.trim() === '' ? '' : l.replace(/^[ \t]*\|/, '')));
  } else {
    const margin = commonIndent(nonBlank);
    body = rest.map((l) => (l.trim() === '' ? '' : l.slice(margin.length)));
  }
  const all = head === '' ? body : [head, ...body];
  return all.join('\n').replace(/^\n+/, '').trimEnd();
}

/** The longest whitespace prefix shared by all lines (as Python's textwrap.dedent). */
function commonIndent(lines: readonly string[]): string {
  let margin: string | null = null;
  for (const line of lines) {
    const indent = /^[ \t]*/.exec(line)![0];
    if (margin === null) {
      margin = indent;
      continue;
    }
    let n = 0;
    while (n < margin.length && n < indent.length && margin[n] === indent[n]) n++;
    margin = margin.slice(0, n);
  }
  return margin ?? '';
}

function versionIndexOf(metadataVersion: string | null): number {
  return metadataVersion === null ? -1 : (METADATA_VERSIONS as readonly string[]).indexOf(metadataVersion);
}

function invalid(field: string, message: string, value?: unknown): PyedgeError {
  return new PyedgeError(
    'PYEDGE_INVALID_METADATA',
    `Invalid core metadata: ${message} See https://packaging.python.org/specifications/core-metadata/`,
    value === undefined ? { field } : { field, value },
  );
}

/**
 * Check the fields the index depends on. Throws PYEDGE_INVALID_METADATA naming
 * the field; everything else is accepted as written (as Warehouse does).
 */
export function validateCoreMetadata(md: CoreMetadata): void {
  if (md.metadataVersion === null) {
    throw invalid('Metadata-Version', "'Metadata-Version' is missing.");
  }
  const versionIndex = versionIndexOf(md.metadataVersion);
  if (versionIndex < 0) {
    throw invalid(
      'Metadata-Version',
      `'Metadata-Version' is '${md.metadataVersion}'; supported versions are ${METADATA_VERSIONS.join(', ')}.`,
      md.metadataVersion,
    );
  }
  if (md.name === null) throw invalid('Name', "'Name' is missing.");
  if (!isValidName(md.name)) {
    throw invalid(
      'Name',
      `'Name' is '${md.name}', which is not a valid project name: use letters, digits, '.', '_' and '-', starting and ending with a letter or digit.`,
      md.name,
    );
  }
  if (md.version === null) throw invalid('Version', "'Version' is missing.");
  if (!isValidVersion(md.version)) {
    throw invalid('Version', `'Version' is '${md.version}', which is not a valid PEP 440 version.`, md.version);
  }
  if (md.summary !== null) {
    if (md.summary.includes('\n')) throw invalid('Summary', "'Summary' must be a single line.", md.summary);
    if (md.summary.length > 512) {
      throw invalid('Summary', `'Summary' is ${md.summary.length} characters long; the limit is 512.`);
    }
  }
  if (versionIndex >= METADATA_VERSIONS.indexOf('2.4')) {
    for (const path of md.licenseFiles) {
      if (!isSafeRelativePath(path)) {
        throw invalid(
          'License-File',
          `'License-File' entry '${path}' must be a relative path using '/' separators and no '..' (PEP 639).`,
          path,
        );
      }
    }
  }
}

function isSafeRelativePath(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\\') || /^[A-Za-z]:/.test(path)) return false;
  return !path.split('/').includes('..');
}

/**
 * What a release keeps of its core metadata. Call after validateCoreMetadata;
 * throws PYEDGE_INVALID_METADATA when Metadata-Version is missing.
 */
export function toReleaseMetadata(md: CoreMetadata): ReleaseMetadata {
  if (md.metadataVersion === null) throw invalid('Metadata-Version', "'Metadata-Version' is missing.");
  return {
    metadataVersion: md.metadataVersion,
    summary: md.summary,
    description: md.description,
    descriptionContentType: md.descriptionContentType,
    requiresPython: md.requiresPython,
    requiresDist: [...md.requiresDist],
    providesExtra: [...md.providesExtra],
    license: md.license,
    licenseExpression: md.licenseExpression,
    licenseFiles: [...md.licenseFiles],
    classifiers: [...md.classifiers],
    keywords: md.keywords,
    author: md.author,
    authorEmail: md.authorEmail,
    maintainer: md.maintainer,
    maintainerEmail: md.maintainerEmail,
    homePage: md.homePage,
    projectUrls: [...md.projectUrls],
    dynamic: [...md.dynamic],
  };
}
