/**
 * The facts Warehouse's JSON API and XML-RPC derive from a project: which
 * release `/pypi/<name>/json` shows, which release a requested version means,
 * a release's files, its project URLs and upload times in Warehouse's forms.
 */
import type { ProjectFile, ProjectState, Release, ReleaseMetadata } from '../core/model.js';
import { canonicalVersion, compareVersions, isPrerelease, isValidVersion } from '../core/versions.js';
import { formatUploadTime } from './simple-page.js';

/** 0 final, 1 pre- or dev-release, 2 unparsable (Warehouse: `is_prerelease` NULLS LAST). */
function prereleaseRank(version: string): number {
  if (!isValidVersion(version)) return 2;
  return isPrerelease(version) ? 1 : 0;
}

/** Code-unit order, so that ties break alike on every machine. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Releases newest first in PEP 440 order (Warehouse's `_pypi_ordering DESC`). */
export function newestFirst(releases: readonly Release[]): Release[] {
  return [...releases].sort((a, b) => compareVersions(b.version, a.version) || byCodeUnits(b.version, a.version));
}

/**
 * The release `/pypi/<name>/json` describes, as Warehouse picks it: not yanked
 * before yanked, final before pre-release, then the highest version.
 */
export function latestRelease(releases: readonly Release[]): Release | null {
  let best: Release | null = null;
  for (const r of newestFirst(releases)) {
    if (best === null || Number(r.yanked) - Number(best.yanked) < 0) best = r;
    else if (r.yanked === best.yanked && prereleaseRank(r.version) < prereleaseRank(best.version)) best = r;
  }
  return best;
}

/**
 * The release a requested version denotes: the one with the same PEP 440
 * canonical form (`1.0.0` finds `1.0`), or, when several share it or the
 * request is not a valid version, the one spelled exactly so.
 */
export function findRelease(releases: readonly Release[], version: string): Release | null {
  const canonical = canonicalVersion(version);
  if (canonical !== null) {
    // Derived from the version rather than trusted from the row, so hand-made states behave alike.
    const same = releases.filter((r) => (canonicalVersion(r.version) ?? r.canonicalVersion) === canonical);
    if (same.length === 1) return same[0]!;
    if (same.length > 1) return same.find((r) => r.version === version) ?? null;
  }
  return releases.find((r) => r.version === version) ?? null;
}

/** The files of a release, ordered by filename as Warehouse lists them. */
export function releaseFiles(state: ProjectState, release: Release): ProjectFile[] {
  return state.files.filter((f) => f.version === release.version).sort((a, b) => byCodeUnits(a.filename, b.filename));
}

/** releaseFiles of every release at once, by version (a release without files has no entry). */
export function filesByVersion(state: ProjectState): Map<string, ProjectFile[]> {
  const out = new Map<string, ProjectFile[]>();
  for (const f of state.files) {
    const list = out.get(f.version);
    if (list === undefined) out.set(f.version, [f]);
    else list.push(f);
  }
  for (const list of out.values()) list.sort((a, b) => byCodeUnits(a.filename, b.filename));
  return out;
}

/** A file's absolute download URL; each path segment percent-encoded (a raw `+` reads as a space on S3). */
export function fileDownloadUrl(baseUrl: string, path: string): string {
  return `${baseUrl}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** The project page URL Warehouse puts in `package_url` / `project_url`. */
export function projectPageUrl(baseUrl: string, name: string): string {
  return `${baseUrl}/project/${encodeURIComponent(name)}/`;
}

/** The release page URL Warehouse puts in `release_url`. */
export function releasePageUrl(baseUrl: string, name: string, version: string): string {
  return `${baseUrl}/project/${encodeURIComponent(name)}/${encodeURIComponent(version)}/`;
}

/**
 * `info.project_urls` as Warehouse builds it: `Homepage` from Home-page, then each
 * `Label, URL` entry (blank halves skipped, a repeated label keeps the last URL,
 * a Homepage entry equal to Home-page not repeated). Null when there are none.
 */
export function projectUrlsOf(metadata: ReleaseMetadata): Map<string, string> | null {
  const urls = new Map<string, string>();
  if (metadata.homePage) urls.set('Homepage', metadata.homePage);
  for (const spec of metadata.projectUrls) {
    const comma = spec.indexOf(',');
    if (comma < 0) continue;
    const label = spec.slice(0, comma).trim();
    const url = spec.slice(comma + 1).trim();
    if (!label || !url) continue;
    const folded = label.toLowerCase().replace(/[-_]/g, '');
    if (folded === 'homepage' && url === urls.get('Homepage')) continue;
    urls.set(label, url);
  }
  return urls.size > 0 ? urls : null;
}

/** Upload time in Warehouse's two forms. */
export interface UploadTimes {
  /** `YYYY-MM-DDTHH:MM:SS` (strftime, no zone). */
  readonly plain: string;
  /** Python's `isoformat() + "Z"`: microseconds only when not zero. */
  readonly iso: string;
}

export function uploadTimes(stored: string): UploadTimes {
  const t = formatUploadTime(stored);
  if (t === null) return { plain: stored, iso: stored };
  const plain = t.slice(0, 19);
  const micro = (t.slice(20, -1) + '000000').slice(0, 6);
  return { plain, iso: micro === '' || /^0+$/.test(micro) ? `${plain}Z` : `${plain}.${micro}Z` };
}

/** Null for an empty list, as Warehouse gives for missing multi-use fields. */
export function listOrNull(items: readonly string[]): string[] | null {
  return items.length > 0 ? [...items] : null;
}

/** Null for a missing or empty string. */
export function textOrNull(value: string | null): string | null {
  return value === null || value === '' ? null : value;
}
