/**
 * The XML-RPC methods mirrors (bandersnatch before version 8, pep381client,
 * z3c.pypimirror) call, with the signatures and answers Warehouse gave them
 * before it retired all but the changelog methods.
 */
import type { Database } from '../../db/database.js';
import type { Change, ProjectState, Release } from '../../core/model.js';
import { normalizeName } from '../../core/names.js';
import {
  fileDownloadUrl,
  latestRelease,
  newestFirst,
  projectPageUrl,
  releaseFiles,
  releasePageUrl,
  textOrNull,
  uploadTimes,
} from '../../render/json-api-release.js';
import { formatUploadTime } from '../../render/simple-page.js';
import type { XmlRpcData } from './xmlrpc-codec.js';
import type { XmlRpcMethod } from './xmlrpc-methods.js';

/** Warehouse's page size for the changelog methods: callers ask again from the last serial they got. */
export const CHANGELOG_LIMIT = 50_000;

/** The largest Unix time whose ISO form still sorts as text (year 9999). */
const MAX_UNIX_SECONDS = 253_402_300_799;

/** What the mirror API needs from the origin. */
export interface MirrorApiDeps {
  readonly db: Database;
  /** The origin's public base URL without a trailing slash. */
  baseUrl(): string;
}

function unixSeconds(stored: string): number {
  const ms = Date.parse(formatUploadTime(stored) ?? stored);
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

/** The journal wording Warehouse used, which some `changelog` readers match on. */
function actionText(c: Change): string {
  if (c.action === 'add file') return c.detail?.startsWith('add ') ? c.detail : `add file ${c.filename ?? ''}`.trim();
  if (c.action === 'remove file' && c.filename) return `remove file ${c.filename}`;
  return c.action;
}

function changeRow(c: Change, withSerial: boolean): XmlRpcData {
  const row: XmlRpcData[] = [c.name, c.version, unixSeconds(c.submittedAt), actionText(c)];
  if (withSerial) row.push(c.serial);
  return row;
}

function fileStruct(baseUrl: string, release: Release, state: ProjectState): XmlRpcData[] {
  return releaseFiles(state, release).map((f) => {
    const times = uploadTimes(f.uploadTime);
    return {
      filename: f.filename,
      packagetype: f.packagetype,
      python_version: f.pythonVersion,
      size: f.size,
      md5_digest: f.md5,
      sha256_digest: f.sha256,
      digests: { md5: f.md5, sha256: f.sha256 },
      has_sig: false,
      upload_time: times.iso,
      upload_time_iso_8601: times.iso,
      comment_text: '',
      downloads: -1,
      path: f.path,
      url: fileDownloadUrl(baseUrl, f.path),
    };
  });
}

function releaseStruct(baseUrl: string, release: Release, state: ProjectState): XmlRpcData {
  const { project } = state;
  const m = release.metadata;
  const ascending = newestFirst(state.releases).reverse();
  return {
    name: project.name,
    version: release.version,
    stable_version: null,
    bugtrack_url: null,
    package_url: projectPageUrl(baseUrl, project.name),
    release_url: releasePageUrl(baseUrl, project.name, release.version),
    docs_url: null,
    home_page: m.homePage,
    download_url: null,
    project_url: [...m.projectUrls],
    author: m.author,
    author_email: m.authorEmail,
    maintainer: m.maintainer,
    maintainer_email: m.maintainerEmail,
    summary: m.summary,
    description: m.description ?? '',
    license: m.license,
    keywords: m.keywords,
    platform: null,
    classifiers: [...m.classifiers],
    requires: [],
    requires_dist: [...m.requiresDist],
    provides: [],
    provides_dist: [],
    obsoletes: [],
    obsoletes_dist: [],
    requires_python: textOrNull(m.requiresPython),
    requires_external: [],
    _pypi_ordering: ascending.findIndex((r) => r.id === release.id),
    downloads: { last_day: -1, last_week: -1, last_month: -1 },
    cheesecake_code_kwalitee_id: null,
    cheesecake_documentation_id: null,
    cheesecake_installability_id: null,
  };
}

/** The mirror API's methods by name. */
export function mirrorApiMethods(deps: MirrorApiDeps): ReadonlyMap<string, XmlRpcMethod> {
  const { db } = deps;
  /** A project as XML-RPC shows it: a quarantined one (PEP 792) is not shown. */
  const visibleState = async (name: string): Promise<ProjectState | null> => {
    const state = await db.getProjectState(normalizeName(name));
    return state && state.project.status !== 'quarantined' ? state : null;
  };
  /** Warehouse matched the version exactly here (no PEP 440 equivalence). */
  const release = (state: ProjectState | null, version: string): Release | null =>
    state?.releases.find((r) => r.version === version) ?? null;

  const methods: Record<string, XmlRpcMethod> = {
    changelog_last_serial: { params: [], call: async () => db.lastSerial() },

    changelog_since_serial: {
      params: [{ name: 'serial', type: 'int' }],
      call: async ([serial]) => (await db.changesSince(serial as number, CHANGELOG_LIMIT)).map((c) => changeRow(c, true)),
    },

    changelog: {
      params: [
        { name: 'since', type: 'int' },
        { name: 'with_ids', type: 'boolean', default: false },
      ],
      call: async ([since, withIds]) => {
        const s = Math.max(0, since as number);
        if (s >= MAX_UNIX_SECONDS) return [];
        // The database reads "at or after"; Warehouse answered strictly after.
        const changes = await db.changesSinceTime(new Date(s * 1000).toISOString(), CHANGELOG_LIMIT);
        return changes.filter((c) => Date.parse(formatUploadTime(c.submittedAt) ?? c.submittedAt) > s * 1000).map((c) => changeRow(c, withIds as boolean));
      },
    },

    list_packages: { params: [], call: async () => (await db.listProjects()).map((p) => p.name) },

    list_packages_with_serial: {
      params: [],
      call: async () => new Map<string, XmlRpcData>((await db.listProjects()).map((p) => [p.name, p.lastSerial])),
    },

    package_releases: {
      params: [
        { name: 'package_name', type: 'string' },
        { name: 'show_hidden', type: 'boolean', default: false },
      ],
      // Warehouse has no hidden releases: show_hidden means every version (newest first), else only the latest not yanked.
      call: async ([name, showHidden]) => {
        const state = await visibleState(name as string);
        if (!state) return [];
        if (showHidden) return newestFirst(state.releases).map((r) => r.version);
        const latest = latestRelease(state.releases.filter((r) => !r.yanked));
        return latest ? [latest.version] : [];
      },
    },

    release_urls: {
      params: [
        { name: 'package_name', type: 'string' },
        { name: 'version', type: 'string' },
      ],
      call: async ([name, version]) => {
        const state = await visibleState(name as string);
        const r = release(state, version as string);
        return state && r ? fileStruct(deps.baseUrl(), r, state) : [];
      },
    },

    release_data: {
      params: [
        { name: 'package_name', type: 'string' },
        { name: 'version', type: 'string' },
      ],
      call: async ([name, version]) => {
        const state = await visibleState(name as string);
        const r = release(state, version as string);
        return state && r ? releaseStruct(deps.baseUrl(), r, state) : {};
      },
    },
  };
  return new Map(Object.entries(methods));
}
