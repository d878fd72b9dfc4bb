/**
 * The facts a Simple API project page shows, derived once from a ProjectState
 * so that the HTML and JSON serializations cannot disagree.
 */
import type { ProjectFile, ProjectListing, ProjectState, ProjectStatus } from '../core/model.js';
import { compareVersions } from '../core/versions.js';

/** The Simple API version we serve (PEP 792 made it 1.4). */
export const SIMPLE_API_VERSION = '1.4';

/** One file link, in the shape both serializations need. */
export interface SimpleFileView {
  readonly filename: string;
  /** Relative to the project page `/simple/<normalized>/`; percent-encoded; no fragment. */
  readonly url: string;
  readonly sha256: string;
  /** Null when the release declares none. */
  readonly requiresPython: string | null;
  /** sha256 of the PEP 658 metadata file, or null when none is served. */
  readonly coreMetadataSha256: string | null;
  readonly size: number;
  /** PEP 700 form `yyyy-mm-ddThh:mm:ss[.ffffff]Z`, or null when unknown. */
  readonly uploadTime: string | null;
  /** false, true (yanked without a reason) or the non-empty reason. */
  readonly yanked: boolean | string;
}

/** A project page, ready to serialize. */
export interface SimplePageView {
  /** PEP 503 normalized name (what Warehouse shows on the page and in JSON `name`). */
  readonly name: string;
  readonly lastSerial: number;
  readonly status: ProjectStatus;
  /** Shown only for a non-active status with a non-empty reason. */
  readonly statusReason: string | null;
  /** Every release's version, PEP 440 ascending. */
  readonly versions: readonly string[];
  /** Ordered by (version, filename) like Warehouse; empty while quarantined (PEP 792). */
  readonly files: readonly SimpleFileView[];
}

/** Code-unit order: locale-independent, so every machine sorts alike. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `'../../' + path` with each segment percent-encoded (S3 would read a raw `+` as a space). */
export function fileUrl(path: string): string {
  return '../../' + path.split('/').map(encodeURIComponent).join('/');
}

/** The relative link from `/simple/` to a project page. */
export function projectHref(normalizedName: string): string {
  return encodeURIComponent(normalizedName) + '/';
}

const PEP700_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
const ISO_LIKE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Brings a stored timestamp to the PEP 700 form. Databases hand back
 * `2024-01-02 03:04:05` (SQLite) or `…+00:00` (PostgreSQL) as well as
 * `toISOString()` output; anything unreadable is dropped, which PEP 700 allows.
 */
export function formatUploadTime(value: string): string | null {
  if (PEP700_TIME.test(value)) return value;
  const m = ISO_LIKE.exec(value.trim());
  if (m === null) return null;
  const [, date, time, fraction, zone] = m;
  const frac = fraction === undefined ? '' : fraction.slice(0, 7);
  if (zone === undefined || /^(z|[+-]00(:?00)?)$/i.test(zone)) return `${date}T${time}${frac}Z`;
  const offset = zone.length === 3 ? `${zone}:00` : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  const ms = Date.parse(`${date}T${time}${fraction ?? ''}${offset}`);
  if (Number.isNaN(ms)) return null;
  return new Date(ms).toISOString();
}

function yankedOf(file: ProjectFile): boolean | string {
  if (!file.yanked) return false;
  return file.yankedReason !== null && file.yankedReason !== '' ? file.yankedReason : true;
}

function toFileView(file: ProjectFile): SimpleFileView {
  return {
    filename: file.filename,
    url: fileUrl(file.path),
    sha256: file.sha256,
    requiresPython: file.requiresPython !== null && file.requiresPython !== '' ? file.requiresPython : null,
    coreMetadataSha256: file.metadataSha256 !== null && file.metadataSha256 !== '' ? file.metadataSha256 : null,
    size: file.size,
    uploadTime: formatUploadTime(file.uploadTime),
    yanked: yankedOf(file),
  };
}

/** Derives the page from the state; pure, and independent of the input's ordering. */
export function toSimplePage(state: ProjectState): SimplePageView {
  const { project } = state;
  // PEP 700: every file's version must be listed, so files count even if their release row is missing.
  const versionSet = new Set<string>(state.releases.map((r) => r.version));
  for (const f of state.files) versionSet.add(f.version);
  const versions = [...versionSet].sort((a, b) => compareVersions(a, b) || byCodeUnits(a, b));

  const rank = new Map<string, number>(versions.map((v, i) => [v, i]));
  const files =
    project.status === 'quarantined'
      ? []
      : [...state.files]
          .sort((a, b) => (rank.get(a.version) ?? 0) - (rank.get(b.version) ?? 0) || byCodeUnits(a.filename, b.filename))
          .map(toFileView);

  const reason = project.statusReason;
  return {
    name: project.normalizedName,
    lastSerial: project.lastSerial,
    status: project.status,
    statusReason: project.status !== 'active' && reason !== null && reason !== '' ? reason : null,
    versions,
    files,
  };
}

/** The root index's projects in normalized-name order, as Warehouse lists them. */
export function sortListings(projects: readonly ProjectListing[]): ProjectListing[] {
  return [...projects].sort(
    (a, b) => byCodeUnits(a.normalizedName, b.normalizedName) || byCodeUnits(a.name, b.name),
  );
}
