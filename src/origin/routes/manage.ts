/**
 * `/api/projects/…`: project management over HTTP, JSON in and out, with the
 * same API tokens as uploads (`Basic __token__:TOKEN` or `Bearer TOKEN`).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify';
import type { ProjectStatus, Role } from '../../core/model.js';
import type { OriginContext } from '../app.js';
import { jsonBody } from '../manage/json-body.js';
import { MAX_REASON_LENGTH, PROJECT_STATUSES, ProjectManager, ROLES, type ManageResult, type Requester } from '../manage/project-manager.js';
import { authenticateRequest } from '../manage/request-token.js';

interface NameParams {
  readonly name: string;
}
interface VersionParams extends NameParams {
  readonly version: string;
}
interface FileParams extends NameParams {
  readonly filename: string;
}
interface UserParams extends NameParams {
  readonly username: string;
}

const reason = { maxLength: MAX_REASON_LENGTH };

/** An optional body may be left out entirely; validate it as an empty object then. */
const bodyOptional: preValidationHookHandler = (request, _reply, done) => {
  if (request.body === undefined || request.body === null) request.body = {};
  done();
};

export const manageRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const manager = new ProjectManager(context.db, context.blobs, context.logger.child({ component: 'manage' }));

  const requester = async (request: FastifyRequest): Promise<Requester> => ({
    kind: 'token',
    token: await authenticateRequest(context.db, request.headers.authorization),
  });

  /** Make the write visible (page cache, change feed) and answer with its serial. */
  const answer = (reply: FastifyReply, result: ManageResult, fields: Record<string, unknown>): Record<string, unknown> => {
    context.committed([result.project], result.serial);
    void reply.header('cache-control', 'no-store').header('x-pypi-last-serial', String(result.serial));
    return { serial: result.serial, project: result.project, ...fields };
  };

  app.post<{ Params: VersionParams; Body: { reason?: string } }>(
    '/api/projects/:name/releases/:version/yank',
    { ...jsonBody({ reason }), preValidation: bodyOptional },
    async (request, reply) => {
      const { name, version } = request.params;
      const result = await manager.yank(await requester(request), name, version, request.body.reason ?? null);
      return answer(reply, result, { version, yanked: true, reason: result.reason });
    },
  );

  app.post<{ Params: VersionParams }>(
    '/api/projects/:name/releases/:version/unyank',
    { ...jsonBody({}), preValidation: bodyOptional },
    async (request, reply) => {
      const { name, version } = request.params;
      const result = await manager.unyank(await requester(request), name, version);
      return answer(reply, result, { version, yanked: false });
    },
  );

  app.delete<{ Params: FileParams }>('/api/projects/:name/files/:filename', async (request, reply) => {
    const { name, filename } = request.params;
    const result = await manager.removeFile(await requester(request), name, filename);
    return answer(reply, result, { filename, removedFiles: result.removedFiles });
  });

  app.delete<{ Params: VersionParams }>('/api/projects/:name/releases/:version', async (request, reply) => {
    const { name, version } = request.params;
    const result = await manager.removeRelease(await requester(request), name, version);
    return answer(reply, result, { version, removedFiles: result.removedFiles });
  });

  app.delete<{ Params: NameParams }>('/api/projects/:name', async (request, reply) => {
    const result = await manager.removeProject(await requester(request), request.params.name);
    return answer(reply, result, { removedFiles: result.removedFiles });
  });

  app.get<{ Params: NameParams }>('/api/projects/:name/roles', async (request, reply) => {
    const { project, roles } = await manager.listRoles(await requester(request), request.params.name);
    void reply.header('cache-control', 'no-store');
    return { project: project.normalizedName, roles };
  });

  app.put<{ Params: UserParams; Body: { role: Role } }>(
    '/api/projects/:name/roles/:username',
    jsonBody({ role: { enum: ROLES } }, ['role']),
    async (request, reply) => {
      const { name, username } = request.params;
      const result = await manager.setRole(await requester(request), name, username, request.body.role);
      return answer(reply, result, { username, role: request.body.role });
    },
  );

  app.delete<{ Params: UserParams }>('/api/projects/:name/roles/:username', async (request, reply) => {
    const { name, username } = request.params;
    const result = await manager.removeRole(await requester(request), name, username);
    return answer(reply, result, { username });
  });

  app.put<{ Params: NameParams; Body: { status: ProjectStatus; reason?: string } }>(
    '/api/projects/:name/status',
    jsonBody({ status: { enum: PROJECT_STATUSES }, reason }, ['status']),
    async (request, reply) => {
      const { status } = request.body;
      const result = await manager.setStatus(await requester(request), request.params.name, status, request.body.reason ?? null);
      return answer(reply, result, { status, reason: result.reason });
    },
  );
};
