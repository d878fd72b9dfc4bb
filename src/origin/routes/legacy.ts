/** `POST /legacy/`: the upload API that twine speaks. */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { OriginContext } from '../app.js';
import { authenticate } from '../tokens.js';
import { drainRequest, field, readUploadForm } from '../upload/upload-form.js';

export const legacyRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const { config, db, uploads } = context;
  // How much of a refused request we read (and drop) so the client sees our answer.
  const drainCap = config.maxUploadSize + 16 * 1024 * 1024;

  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<string> => {
    try {
      const token = await authenticate(db, request.headers.authorization);
      const form = await readUploadForm(request.raw, { spoolDir: context.spoolDir, maxFileSize: config.maxUploadSize });
      if (field(form, ':action') === 'doc_upload') {
        const docs = await context.docs.uploadForm(form, token);
        context.committed([docs.project.normalizedName], docs.serial);
        request.log.info(
          { project: docs.project.normalizedName, generation: docs.generation, files: docs.files, serial: docs.serial, user: token.username },
          'docs upload accepted',
        );
        void reply.type('text/plain; charset=utf-8').header('x-pypi-last-serial', String(docs.serial));
        return 'OK\n';
      }
      const outcome = await uploads.upload(form, token);
      context.committed([outcome.project.normalizedName], outcome.serial);
      request.log.info(
        { project: outcome.project.normalizedName, filename: outcome.filename, serial: outcome.serial, user: token.username },
        'upload accepted',
      );
      void reply.type('text/plain; charset=utf-8').header('x-pypi-last-serial', String(outcome.serial));
      return 'OK\n';
    } catch (err) {
      await drainRequest(request.raw, drainCap);
      throw err;
    }
  };
  app.post('/legacy/', handler);
  app.post('/legacy', handler);
};
