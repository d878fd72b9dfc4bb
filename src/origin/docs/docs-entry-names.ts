/**
 * The rules for paths inside a documentation zip. A path becomes part of a blob
 * key and of a URL, so anything that could climb out of the documentation root
 * or mean different things to different tools is refused, naming the entry.
 */
import { PyedgeError } from '../../core/errors.js';

/** A checked entry path, relative to the documentation root, `/`-separated. */
export interface CheckedEntryName {
  /** The path without a trailing `/`. */
  readonly path: string;
  /** True for a folder entry (its name ended in `/`): nothing is stored for it. */
  readonly isFolder: boolean;
}

const CONTROL = /[\u0000-\u001f\u007f]/;
const DRIVE = /^[A-Za-z]:/;

/** The error for a bad entry: which entry, what is wrong, what to do. */
export function badEntry(name: string, why: string): PyedgeError {
  return new PyedgeError('PYEDGE_INVALID_DISTRIBUTION', `Invalid documentation zip: the entry ${JSON.stringify(name)} ${why}.`, {
    entry: name.slice(0, 300),
  });
}

/**
 * Throws PYEDGE_INVALID_DISTRIBUTION unless `name` is a safe relative path of at
 * most `maxPathBytes`. `raw` is the name as stored: a name without the UTF-8 flag
 * decodes as CP437, which shows control bytes as glyphs, yet unzip tools write
 * those bytes as they are.
 */
export function checkEntryName(name: string, maxPathBytes: number, raw?: Uint8Array): CheckedEntryName {
  if (name === '') throw badEntry(name, 'has an empty name');
  if (CONTROL.test(name) || raw?.some((b) => b < 0x20 || b === 0x7f)) {
    throw badEntry(name, 'contains a NUL or control character; rename the file');
  }
  // Windows tools read a backslash as a separator: "a\..\b" would mean something else there.
  if (name.includes('\\')) throw badEntry(name, "contains a backslash; zip paths must use '/' between folders");
  if (name.startsWith('/') || DRIVE.test(name)) {
    throw badEntry(name, 'is an absolute path; store paths relative to the documentation root (zip the folder contents, not /)');
  }
  const isFolder = name.endsWith('/');
  const path = isFolder ? name.slice(0, -1) : name;
  const segments = path.split('/');
  if (segments.includes('..')) throw badEntry(name, "climbs out of the documentation root with '..'");
  if (segments.some((s) => s === '' || s === '.')) throw badEntry(name, "has an empty or '.' path segment ('//' or '/./')");
  if (Buffer.byteLength(path) > maxPathBytes) throw badEntry(name, `has a path longer than ${maxPathBytes} bytes`);
  return { path, isFolder };
}

/** Unix file type bits of a zip entry's external attributes (0 when the zip was not made on Unix). */
export function unixFileType(externalFileAttributes: number): number {
  return (externalFileAttributes >>> 16) & 0o170000;
}

export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
