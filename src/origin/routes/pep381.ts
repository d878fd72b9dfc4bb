/** PEP 381's mirroring pages: `/last-modified`, `/serverkey`, `/serversig/<name>`, `/local-stats/days/`. */
import { execFile } from 'node:child_process';
import type { FastifyPluginAsync } from 'fastify';
import type { OriginContext } from '../app.js';
import { normalizeName } from '../../core/names.js';
import { PyedgeError } from '../../core/errors.js';
import { signProject, type ServerSig } from '../../core/signing.js';

/** Compress with the system's bzip2, the format PEP 381 gives for statistics files. */
function bzip2(data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile('bzip2', ['-c', '-9'], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 }, (err, stdout) => {
      if (err) reject(new PyedgeError('PYEDGE_UNAVAILABLE', 'Statistics in bzip2 form are unavailable (no bzip2 on the server); use the .csv file.', {}, { cause: err }));
      else resolve(stdout);
    });
    child.stdin?.end(data);
  });
}

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

  app.get('/local-stats/days', async (_request, reply) => reply.redirect('/local-stats/days/', 301));

  app.get('/local-stats/days/', async (_request, reply) => {
    const days = await db.downloadDays();
    const links = days.map((d) => `    <a href="${d.day}.bz2">${d.day}.bz2</a> <a href="${d.day}.csv">csv</a> ${d.total}<br />\n`).join('');
    void reply.type('text/html; charset=utf-8').header('cache-control', 'max-age=300, public');
    return `<!DOCTYPE html>\n<html>\n  <head><title>Download statistics per day</title></head>\n  <body>\n${links}  </body>\n</html>\n`;
  });

  app.get<{ Params: { file: string } }>('/local-stats/days/:file', async (request, reply) => {
    const m = /^(\d{4}-\d\d-\d\d)(\.bz2|\.csv)$/.exec(request.params.file);
    if (!m) throw new PyedgeError('PYEDGE_NOT_FOUND', 'Not Found: statistics files are named YYYY-MM-DD.bz2 (or .csv).');
    const rows = await db.downloadsOn(m[1]!);
    if (rows.length === 0) throw new PyedgeError('PYEDGE_NOT_FOUND', `Not Found: no downloads recorded on ${m[1]}.`);
    // PEP 381: one line per project, file and client: package,filename,useragent,count.
    const csv = rows.map((r) => `${r.project},${r.filename},${r.userAgent},${r.count}\n`).join('');
    void reply.header('cache-control', 'max-age=300, public');
    if (m[2] === '.csv') return reply.type('text/csv; charset=utf-8').send(csv);
    return reply.type('application/x-bzip2').send(await bzip2(Buffer.from(csv)));
  });

  app.get('/last-modified', async (_request, reply) => {
    const serial = await db.lastSerial();
    const [last] = serial > 0 ? await db.changesSince(serial - 1, 1) : [];
    void reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').header('x-pypi-last-serial', String(serial));
    return `${pep381Time(last?.submittedAt ?? new Date(0).toISOString())}\n`;
  });
};
