/**
 * PEP 691 JSON pages of the Simple API (`application/vnd.pypi.simple.v1+json`),
 * with PEP 700 versions/size/upload-time, PEP 714 core-metadata and PEP 792 status.
 * Objects are built in a fixed key order and serialized compactly, so equal
 * states give equal bytes.
 */
import type { ProjectListing, ProjectState } from '../core/model.js';
import { SIMPLE_API_VERSION, sortListings, toSimplePage, type SimpleFileView } from './simple-page.js';
import { rootJson } from './root-parts.js';

function fileJson(file: SimpleFileView): Record<string, unknown> {
  const out: Record<string, unknown> = {
    filename: file.filename,
    url: file.url,
    hashes: { sha256: file.sha256 },
  };
  // PEP 691: optional, and a string when present; omitting beats Warehouse's null.
  if (file.requiresPython !== null) out['requires-python'] = file.requiresPython;
  const metadata = file.coreMetadataSha256 === null ? false : { sha256: file.coreMetadataSha256 };
  out['core-metadata'] = metadata;
  // Warehouse's historical key (PEP 714). Never `dist-info-metadata`: pip 22.3–23.1 crash on it.
  out['data-dist-info-metadata'] = metadata;
  out.size = file.size;
  if (file.uploadTime !== null) out['upload-time'] = file.uploadTime;
  out.yanked = file.yanked;
  return out;
}

/** The project page `/simple/<normalized>/` as JSON. */
export function renderProjectJson(state: ProjectState): string {
  const page = toSimplePage(state);
  const status: Record<string, string> = { status: page.status };
  if (page.statusReason !== null) status.reason = page.statusReason;
  return JSON.stringify({
    meta: { '_last-serial': page.lastSerial, 'api-version': SIMPLE_API_VERSION },
    name: page.name,
    'project-status': status,
    versions: page.versions,
    files: page.files.map(fileJson),
  });
}

/** The root page `/simple/` as JSON; each project carries its `_last-serial`, which bandersnatch 8 syncs from. */
export function renderRootJson(projects: readonly ProjectListing[], lastSerial: number): string {
  return rootJson.head(lastSerial) + sortListings(projects).map((p, i) => rootJson.entry(p, i === 0)).join('') + rootJson.tail();
}
