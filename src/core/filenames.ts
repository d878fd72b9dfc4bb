/** Parsing of distribution filenames: wheels (PEP 427/491) and sdists (PEP 625 and legacy). */
import { PyedgeError } from './errors.js';
import { normalizeName } from './names.js';

export type DistKind = 'wheel' | 'sdist';

/** What a distribution filename says about itself. */
export interface ParsedFilename {
  readonly filename: string;
  readonly kind: DistKind;
  /** The name as spelled in the filename (wheel names escape `-` as `_`). */
  readonly name: string;
  readonly version: string;
  /** `.whl`, `.tar.gz` or `.zip`. */
  readonly extension: '.whl' | '.tar.gz' | '.zip';
  /** Wheel only: the build tag, if any. */
  readonly build?: string;
  /** Wheel only: compressed tag sets. */
  readonly tags?: { readonly python: string; readonly abi: string; readonly platform: string };
}

const WHEEL = /^(?<name>[^\s-]+?)-(?<version>[^\s-]+?)(-(?<build>\d[^-]*))?-(?<python>[^\s-]+?)-(?<abi>[^\s-]+?)-(?<platform>[^\s-]+?)\.whl$/;
const SDIST_EXT = ['.tar.gz', '.zip'] as const;

/** A filename safe to store and to put in a URL path: no separators, traversal or control characters. */
export function assertSafeFilename(filename: string): void {
  if (filename.length === 0 || filename.length > 255) {
    throw new PyedgeError('PYEDGE_INVALID_FILENAME', 'Invalid filename: it must be 1 to 255 characters long.', { filename });
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(filename)) {
    throw new PyedgeError('PYEDGE_INVALID_FILENAME', 'Invalid filename: it contains NUL or control characters.', { filename });
  }
  if (/[/\\]/.test(filename) || filename === '.' || filename === '..' || filename.startsWith('.')) {
    throw new PyedgeError('PYEDGE_INVALID_FILENAME', 'Invalid filename: it must not contain path separators or start with a dot.', { filename });
  }
  if (!/^[A-Za-z0-9._+!-]+$/.test(filename)) {
    throw new PyedgeError('PYEDGE_INVALID_FILENAME', 'Invalid filename: only letters, digits and . _ + ! - are allowed.', { filename });
  }
}

/**
 * Parse a distribution filename. Throws PYEDGE_INVALID_FILENAME for anything
 * that is not a wheel, a `.tar.gz` or a `.zip` sdist of the form `name-version`.
 */
export function parseFilename(filename: string): ParsedFilename {
  assertSafeFilename(filename);
  if (filename.endsWith('.whl')) {
    const m = WHEEL.exec(filename);
    if (!m?.groups) {
      throw new PyedgeError(
        'PYEDGE_INVALID_FILENAME',
        `Invalid wheel filename (wrong number of parts): ${filename}. Expected {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl.`,
        { filename },
      );
    }
    const g = m.groups as Record<string, string | undefined>;
    const parsed: ParsedFilename = {
      filename,
      kind: 'wheel',
      name: g.name!,
      version: g.version!,
      extension: '.whl',
      tags: { python: g.python!, abi: g.abi!, platform: g.platform! },
      ...(g.build ? { build: g.build } : {}),
    };
    return parsed;
  }
  const ext = SDIST_EXT.find((e) => filename.endsWith(e));
  if (!ext) {
    throw new PyedgeError(
      'PYEDGE_INVALID_FILENAME',
      `Invalid file extension: ${filename}. Use .whl for wheels and .tar.gz (or the legacy .zip) for sdists.`,
      { filename },
    );
  }
  const stem = filename.slice(0, -ext.length);
  // The version is the part after the last dash (PEP 625 names escape dashes as underscores;
  // legacy sdists may keep dashes in the name, never in the version).
  const dash = stem.lastIndexOf('-');
  if (dash <= 0 || dash === stem.length - 1) {
    throw new PyedgeError('PYEDGE_INVALID_FILENAME', `Invalid sdist filename: ${filename}. Expected {name}-{version}${ext}.`, {
      filename,
    });
  }
  return { filename, kind: 'sdist', name: stem.slice(0, dash), version: stem.slice(dash + 1), extension: ext };
}

/** The `filetype` form value twine sends for a kind of file. */
export function filetypeOf(kind: DistKind): 'bdist_wheel' | 'sdist' {
  return kind === 'wheel' ? 'bdist_wheel' : 'sdist';
}

/** True when a filename's name part denotes the project `name`. */
export function filenameMatchesName(parsed: ParsedFilename, name: string): boolean {
  return normalizeName(parsed.name) === normalizeName(name);
}
