/** PEP 440 versions, through @renovatebot/pep440. */
import pep440 from '@renovatebot/pep440';

/** True when `version` is a valid PEP 440 version. */
export function isValidVersion(version: string): boolean {
  return version.length <= 128 && pep440.valid(version) !== null && version.trim() === version;
}

/**
 * The canonical form of a version, as packaging's `canonicalize_version` gives it
 * and PyPI keys releases by: normalized spelling, trailing zeros of the release
 * dropped (`1.0.0-RC1` → `1rc1`, `1.0` and `1.0.0` → `1`). Null if invalid.
 */
export function canonicalVersion(version: string): string | null {
  if (!isValidVersion(version)) return null;
  const v = pep440.explain(version);
  if (!v) return null;
  const release = [...v.release];
  while (release.length > 1 && release[release.length - 1] === 0) release.pop();
  let out = (v.epoch ? `${v.epoch}!` : '') + release.join('.');
  if (v.pre) out += `${v.pre[0]}${v.pre[1]}`;
  if (v.post !== null && v.post !== undefined) out += `.post${v.post}`;
  if (v.dev !== null && v.dev !== undefined) out += `.dev${v.dev}`;
  if (v.local) out += `+${v.local}`;
  return out;
}

/** Sort order of PEP 440: negative when a < b. Invalid versions sort first, by string. */
export function compareVersions(a: string, b: string): number {
  const va = pep440.valid(a) !== null;
  const vb = pep440.valid(b) !== null;
  if (va && vb) return pep440.compare(a, b);
  if (va !== vb) return va ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** True when the version is a pre-release or development release. */
export function isPrerelease(version: string): boolean {
  return pep440.explain(version)?.is_prerelease ?? false;
}

/** True when two spellings denote the same version (`1.0` and `1.0.0` do). */
export function sameVersion(a: string, b: string): boolean {
  if (!isValidVersion(a) || !isValidVersion(b)) return a === b;
  return pep440.eq(a, b);
}
