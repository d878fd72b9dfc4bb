/** Liveness and a small landing page. */
import type { FastifyPluginAsync } from 'fastify';
import type { OriginContext } from '../app.js';

export const healthRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  app.get('/_health', async (_request, reply) => {
    const serial = await context.db.lastSerial();
    void reply.header('cache-control', 'no-store').header('x-pypi-last-serial', String(serial));
    return { status: 'ok', serial };
  });

  app.get('/', async (_request, reply) => {
    void reply.type('text/html; charset=utf-8').header('cache-control', 'no-store');
    return `<!DOCTYPE html>
<html>
  <head><title>pyedge</title></head>
  <body>
    <h1>pyedge package index</h1>
    <p><a href="/simple/">Simple index</a> (pip: <code>--index-url &lt;this URL&gt;/simple/</code>)</p>
    <p>Upload with twine: <code>--repository-url &lt;this URL&gt;/legacy/</code></p>
  </body>
</html>
`;
  });
};
