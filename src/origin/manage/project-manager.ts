/**
 * Project management with PyPI's permission rules, shared by the HTTP API and the
 * CLI: Owners manage their project, Maintainers only upload, and only an
 * administrator (the CLI, with direct database access) quarantines a project or
 * lifts a quarantine. Removals delete the removed files' blobs after the commit.
 */
import type { Logger } from 'pino';
import { PyedgeError } from '../../core/errors.js';
import type { ApiToken, Project, ProjectStatus, Role } from '../../core/model.js';
import { normalizeName } from '../../core/names.js';
import type { BlobStore } from '../../blobstore/blob-store.js';
import type { Actor, Database, RemovalResult } from '../../db/database.js';

/** Who asks for a change: the holder of an API token, or the administrator at the command line. */
export type Requester = { readonly kind: 'token'; readonly token: ApiToken } | { readonly kind: 'admin' };

/** The administrator: acts on any project, recorded in the changelog without a user name. */
export const ADMIN: Requester = Object.freeze({ kind: 'admin' });

/** What a management write did. */
export interface ManageResult {
  /** Serial of the change; pass it to `OriginContext.committed()`. */
  readonly serial: number;
  /** Normalized name of the project. */
  readonly project: string;
  /** Display name of the project. */
  readonly displayName: string;
}

/** A yank or status change, with the reason as recorded (trimmed; null when none). */
export interface ReasonedResult extends ManageResult {
  readonly reason: string | null;
}

export interface RemovalOutcome extends ManageResult {
  /** How many distribution files the change removed. */
  readonly removedFiles: number;
}

export interface RoleEntry {
  readonly username: string;
  readonly role: Role;
}

export const PROJECT_STATUSES: readonly ProjectStatus[] = ['active', 'archived', 'quarantined', 'deprecated'];
export const ROLES: readonly Role[] = ['Owner', 'Maintainer'];

/** Longest yank or status reason kept (PyPI limits neither; pages and logs stay sane). */
export const MAX_REASON_LENGTH = 1000;

/** How many blob deletions run at once after a removal. */
const DELETE_CONCURRENCY = 8;

export class ProjectManager {
  constructor(
    private readonly db: Database,
    private readonly blobs: BlobStore,
    private readonly log: Logger,
  ) {}

  /** PEP 592: yank a release, so installers skip it unless pinned with `==`. */
  async yank(who: Requester, name: string, version: string, reason?: string | null): Promise<ReasonedResult> {
    const why = cleanReason(reason);
    const project = await this.authorize(who, name, 'yank releases');
    const serial = await this.db.yankRelease(project.normalizedName, version, why, actorOf(who));
    return { ...this.done('yank release', who, project, serial, { version, reason: why }), reason: why };
  }

  async unyank(who: Requester, name: string, version: string): Promise<ManageResult> {
    const project = await this.authorize(who, name, 'un-yank releases');
    const serial = await this.db.unyankRelease(project.normalizedName, version, actorOf(who));
    return this.done('unyank release', who, project, serial, { version });
  }

  /** Remove one file; its filename can never be uploaded again. */
  async removeFile(who: Requester, name: string, filename: string): Promise<RemovalOutcome> {
    const project = await this.authorize(who, name, 'remove files');
    const removed = await this.db.removeFile(project.normalizedName, filename, actorOf(who));
    return this.removed('remove file', who, project, removed, { filename });
  }

  async removeRelease(who: Requester, name: string, version: string): Promise<RemovalOutcome> {
    const project = await this.authorize(who, name, 'remove releases');
    const removed = await this.db.removeRelease(project.normalizedName, version, actorOf(who));
    return this.removed('remove release', who, project, removed, { version });
  }

  async removeProject(who: Requester, name: string): Promise<RemovalOutcome> {
    const project = await this.authorize(who, name, 'remove the project');
    const removed = await this.db.removeProject(project.normalizedName, actorOf(who));
    return this.removed('remove project', who, project, removed, {});
  }

  /** The project's Owners and Maintainers; any of them (or the administrator) may look. */
  async listRoles(who: Requester, name: string): Promise<{ project: Project; roles: readonly RoleEntry[] }> {
    const project = await this.authorize(who, name, 'see its roles', { maintainersToo: true, readOnly: true });
    return { project, roles: await this.db.listRoles(project.normalizedName) };
  }

  /** Give an existing user a role (replacing another role they hold). */
  async setRole(who: Requester, name: string, username: string, role: Role): Promise<ManageResult> {
    if (!ROLES.includes(role)) {
      throw new PyedgeError('PYEDGE_BAD_REQUEST', `Invalid role '${String(role)}': expected Owner or Maintainer.`, { role });
    }
    const project = await this.authorize(who, name, 'manage roles');
    const serial = await this.db.setRole(project.normalizedName, username, role, actorOf(who));
    return this.done('add owner', who, project, serial, { user: username, role });
  }

  /** Take a user's role away; the last Owner cannot be removed. */
  async removeRole(who: Requester, name: string, username: string): Promise<ManageResult> {
    const project = await this.authorize(who, name, 'manage roles');
    const serial = await this.db.removeRole(project.normalizedName, username, actorOf(who));
    return this.done('remove owner', who, project, serial, { user: username });
  }

  /** PEP 792 status. Owners archive, deprecate and reactivate; only the administrator quarantines or lifts one. */
  async setStatus(who: Requester, name: string, status: ProjectStatus, reason?: string | null): Promise<ReasonedResult> {
    if (!PROJECT_STATUSES.includes(status)) {
      throw new PyedgeError('PYEDGE_BAD_REQUEST', `Invalid project status '${String(status)}': expected ${PROJECT_STATUSES.join(', ')}.`, {
        status,
      });
    }
    const why = cleanReason(reason);
    const project = await this.authorize(who, name, 'change its status');
    if (who.kind !== 'admin' && status === 'quarantined') {
      throw new PyedgeError(
        'PYEDGE_FORBIDDEN',
        `Only an administrator can quarantine project '${project.name}' (pyedge project status ${project.normalizedName} quarantined).`,
        { project: project.normalizedName, status },
      );
    }
    const kept = status === 'active' ? null : why;
    const serial = await this.db.setProjectStatus(project.normalizedName, status, kept, actorOf(who));
    return { ...this.done('set status', who, project, serial, { status, reason: kept }), reason: kept };
  }

  /**
   * The project, if `who` may act on it: the administrator always; a token only
   * within its scope, for a user with a role on the project (an Owner unless
   * `maintainersToo`), and not on a quarantined project unless only reading.
   */
  private async authorize(who: Requester, name: string, what: string, options: { maintainersToo?: boolean; readOnly?: boolean } = {}): Promise<Project> {
    const normalized = normalizeName(name);
    const project = await this.db.getProject(normalized);
    if (!project) throw new PyedgeError('PYEDGE_NOT_FOUND', `No project named '${normalized}'.`, { project: normalized });
    if (who.kind === 'admin') return project;

    const { token } = who;
    const context = { project: normalized, user: token.username };
    if (token.projectScope !== null && token.projectScope !== normalized) {
      throw new PyedgeError(
        'PYEDGE_FORBIDDEN',
        `This token is scoped to project '${token.projectScope}' and cannot manage project '${project.name}'.`,
        { ...context, scope: token.projectScope },
      );
    }
    const role = await this.db.getRole(token.userId, normalized);
    if (role === null) {
      throw new PyedgeError('PYEDGE_FORBIDDEN', `The user '${token.username}' has no role on project '${project.name}'.`, context);
    }
    if (role !== 'Owner' && !options.maintainersToo) {
      throw new PyedgeError(
        'PYEDGE_FORBIDDEN',
        `Only an Owner of project '${project.name}' can ${what}; '${token.username}' is a ${role}, who may only upload.`,
        { ...context, role },
      );
    }
    if (project.status === 'quarantined' && !options.readOnly) {
      throw new PyedgeError(
        'PYEDGE_FORBIDDEN',
        `Project '${project.name}' is quarantined: only an administrator can change it until the quarantine is lifted.`,
        { ...context, status: project.status },
      );
    }
    return project;
  }

  private done(action: string, who: Requester, project: Project, serial: number, fields: Record<string, unknown>): ManageResult {
    this.log.info({ action, project: project.normalizedName, serial, actor: actorOf(who) ?? '(admin)', ...fields }, 'project changed');
    return { serial, project: project.normalizedName, displayName: project.name };
  }

  private async removed(
    action: string,
    who: Requester,
    project: Project,
    removal: RemovalResult,
    fields: Record<string, unknown>,
  ): Promise<RemovalOutcome> {
    const result = this.done(action, who, project, removal.serial, { ...fields, files: removal.paths.length });
    await this.deleteBlobs(removal.paths);
    return { ...result, removedFiles: removal.paths.length };
  }

  /**
   * Best effort: the origin already refuses to serve a file the database does not
   * record, so a blob left behind costs space, not correctness. Its filename is
   * never used again, so no new upload can need the key.
   */
  private async deleteBlobs(paths: readonly string[]): Promise<void> {
    const keys = paths.flatMap((p) => [p, `${p}.metadata`]);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keys[next++]!;
        try {
          await this.blobs.delete(key);
        } catch (err) {
          this.log.warn({ err, key }, 'could not delete the blob of a removed file');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
  }
}

function actorOf(who: Requester): Actor {
  return who.kind === 'admin' ? null : who.token.username;
}

/** Trimmed, with an empty reason meaning none. */
function cleanReason(reason: string | null | undefined): string | null {
  const trimmed = reason?.trim() ?? '';
  if (trimmed.length > MAX_REASON_LENGTH) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', `The reason is too long: at most ${MAX_REASON_LENGTH} characters.`, { length: trimmed.length });
  }
  return trimmed === '' ? null : trimmed;
}
