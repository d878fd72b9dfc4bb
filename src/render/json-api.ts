/**
 * Warehouse's JSON API (`/pypi/<name>/json`, `/pypi/<name>/<version>/json`):
 * the same keys, value types and nulls as PyPI, serialized as PyPI does (sorted
 * keys, compact, ASCII), so equal states give equal bytes.
 */
import type { ProjectFile, ProjectState, Release } from '../core/model.js';
import { dumpJson, dumpSerializedEntries, type JsonValue } from './json-api-dump.js';
import {
  fileDownloadUrl,
  filesByVersion,
  findRelease,
  latestRelease,
  listOrNull,
  projectPageUrl,
  projectUrlsOf,
  releasePageUrl,
  textOrNull,
  uploadTimes,
} from './json-api-release.js';

const NO_DOWNLOADS = { last_day: -1, last_month: -1, last_week: -1 } as const;

function fileJson(file: ProjectFile, release: Release, baseUrl: string): JsonValue {
  const times = uploadTimes(file.uploadTime);
  return {
    comment_text: '',
    digests: { blake2b_256: file.blake2b256, md5: file.md5, sha256: file.sha256 },
    downloads: -1,
    filename: file.filename,
    has_sig: false,
    md5_digest: file.md5,
    packagetype: file.packagetype,
    python_version: file.pythonVersion,
    // Warehouse reports the release's Requires-Python on every file.
    requires_python: textOrNull(release.metadata.requiresPython) ?? textOrNull(file.requiresPython),
    size: file.size,
    upload_time: times.plain,
    upload_time_iso_8601: times.iso,
    url: fileDownloadUrl(baseUrl, file.path),
    yanked: release.yanked,
    yanked_reason: textOrNull(release.yankedReason),
  };
}

function infoJson(state: ProjectState, release: Release, baseUrl: string): JsonValue {
  const { project } = state;
  const m = release.metadata;
  return {
    author: m.author,
    author_email: m.authorEmail,
    bugtrack_url: null,
    classifiers: [...m.classifiers],
    description: m.description ?? '',
    description_content_type: m.descriptionContentType,
    docs_url: null,
    download_url: null,
    downloads: NO_DOWNLOADS,
    dynamic: listOrNull(m.dynamic),
    home_page: m.homePage,
    keywords: m.keywords,
    license: m.license,
    license_expression: m.licenseExpression,
    license_files: listOrNull(m.licenseFiles),
    maintainer: m.maintainer,
    maintainer_email: m.maintainerEmail,
    name: project.name,
    package_url: projectPageUrl(baseUrl, project.name),
    platform: null,
    project_url: projectPageUrl(baseUrl, project.name),
    project_urls: projectUrlsOf(m),
    provides_extra: listOrNull(m.providesExtra),
    release_url: releasePageUrl(baseUrl, project.name, release.version),
    requires_dist: listOrNull(m.requiresDist),
    requires_python: textOrNull(m.requiresPython),
    summary: m.summary,
    version: release.version,
    yanked: release.yanked,
    yanked_reason: textOrNull(release.yankedReason),
  };
}

/**
 * The serialized pieces of one project's JSON API documents, each made once: a release's `info`
 * and its files (its page's `urls`, and its entry in the project page's `releases`).
 */
class JsonApiParts {
  readonly #info = new Map<Release, string>();
  readonly #files = new Map<Release, string>();
  /** The state's files by release, sorted once (releaseFiles per release would scan them all each time). */
  #byVersion: Map<string, ProjectFile[]> | null = null;

  constructor(
    readonly state: ProjectState,
    readonly baseUrl: string,
  ) {}

  info(release: Release): string {
    let text = this.#info.get(release);
    if (text === undefined) this.#info.set(release, (text = dumpJson(infoJson(this.state, release, this.baseUrl))));
    return text;
  }

  files(release: Release): string {
    let text = this.#files.get(release);
    if (text === undefined) {
      this.#byVersion ??= filesByVersion(this.state);
      text = dumpJson((this.#byVersion.get(release.version) ?? []).map((f) => fileJson(f, release, this.baseUrl)));
      this.#files.set(release, text);
    }
    return text;
  }

  /** A document showing `release`; with every release's files when `allReleases` (the project page). */
  render(release: Release, allReleases: boolean): string {
    const data: [string, string][] = [
      ['info', this.info(release)],
      ['last_serial', dumpJson(this.state.project.lastSerial)],
      ['urls', this.files(release)],
      ['vulnerabilities', '[]'],
    ];
    if (allReleases) {
      const releases = new Map<string, string>();
      for (const r of this.state.releases) releases.set(r.version, this.files(r));
      data.push(['releases', dumpSerializedEntries(releases)]);
    }
    return dumpSerializedEntries(data);
  }
}

function render(state: ProjectState, release: Release, baseUrl: string, allReleases: boolean): string {
  return new JsonApiParts(state, baseUrl).render(release, allReleases);
}

/** A quarantined project (PEP 792) is hidden from the JSON API, as on PyPI. */
function visible(state: ProjectState): boolean {
  return state.project.status !== 'quarantined';
}

/**
 * `/pypi/<name>/json`: the latest release (see `latestRelease`) with every
 * release's files. Null when there is nothing to show (no releases, or quarantined).
 * `baseUrl` is the index's public URL without a trailing slash.
 */
export function renderProjectJsonApi(state: ProjectState, baseUrl: string): string | null {
  const release = visible(state) ? latestRelease(state.releases) : null;
  return release === null ? null : render(state, release, baseUrl, true);
}

/**
 * `/pypi/<name>/<version>/json`: one release, without the `releases` key (as
 * PyPI since 2022). `version` may be any spelling of the release's version; null
 * when there is no such release.
 */
export function renderReleaseJsonApi(state: ProjectState, version: string, baseUrl: string): string | null {
  const release = visible(state) ? findRelease(state.releases, version) : null;
  return release === null ? null : render(state, release, baseUrl, false);
}

/** A project's whole JSON API: its page, and each release's page by the release's stored version. */
export interface JsonApiPages {
  /** `/pypi/<name>/json`, or null when there is none (then there are no release pages either). */
  readonly project: string | null;
  /** `/pypi/<name>/<version>/json` of every release, by its stored version, in the state's order. */
  readonly releases: readonly (readonly [version: string, page: string])[];
}

/**
 * The same bytes as renderProjectJsonApi and, for each release, renderReleaseJsonApi with its
 * stored version, at a fraction of the cost: the pieces the documents share are serialized once.
 */
export function renderJsonApiPages(state: ProjectState, baseUrl: string): JsonApiPages {
  const latest = visible(state) ? latestRelease(state.releases) : null;
  if (latest === null) return { project: null, releases: [] };
  const parts = new JsonApiParts(state, baseUrl);
  const project = parts.render(latest, true);
  const releases: [string, string][] = [];
  // Each release is the one its own stored version finds (findRelease), so no search is needed.
  for (const r of state.releases) releases.push([r.version, parts.render(r, false)]);
  return { project, releases };
}
