/** PEP 381's mirroring pages: `/last-modified`, `/serverkey`, `/serversig/<name>`. */
import type { FastifyPluginAsync } from 'fastify';
import type { OriginContext } from '../app.js';
import { normalizeName } from '../../core/names.js';
import { PyedgeError } from '../../core/errors.js';
import { signProject, type ServerSig } from '../../core/signing.js';

/** PEP 381's timestamp format, in UTC: `20260131T12:34:56`. */
export function pep381Time(iso: string): string {
  const d = new Date(iso);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

export const pep381Routes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const { db, pages, serverKey } = context;
  // Signatures of the pages currently cached, by project; stale entries are replaced when the serial moves.
  const signatures = new Map<string, ServerSig>();

  app.get('/serverkey', async (_request, reply) => {
    void reply.type('text/plain; charset=utf-8').header('cache-control', 'max-age=3600, public').header('x-pyedge-key-id', serverKey.id);
    return serverKey.publicPem;
  });

  app.get<{ Params: { name: string } }>('/serversig/:name', async (request, reply) => {
    const normalized = normalizeName(request.params.name);
    if (normalized !== request.params.name) return reply.redirect(`/serversig/${encodeURIComponent(normalized)}`, 301);
    const page = await pages.project(normalized);
    if (!page) throw new PyedgeError('PYEDGE_NOT_FOUND', `Not Found: there is no project named '${normalized}' on this index.`);
    let sig = signatures.get(normalized);
    if (!sig || sig.serial !== page.serial) {
      sig = signProject(serverKey.privateKey, normalized, page.serial, page.html, page.json);
      signatures.set(normalized, sig);
      if (signatures.size > 10_000) signatures.delete(signatures.keys().next().value!);
    }
    void reply
      .type('application/json')
      .header('cache-control', `max-age=${context.config.pageMaxAge}, public`)
      .header('x-pypi-last-serial', String(page.serial));
    return JSON.stringify(sig);
  });

  app.get('/last-modified', async (_request, reply) => {
    const serial = await db.lastSerial();
    const [last] = serial > 0 ? await db.changesSince(serial - 1, 1) : [];
    void reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').header('x-pypi-last-serial', String(serial));
    return `${pep381Time(last?.submittedAt ?? new Date(0).toISOString())}\n`;
  });
};
