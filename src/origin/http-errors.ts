/** The one place that maps domain errors to HTTP answers. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isPyedgeError } from '../core/errors.js';

/** An HTTP reason phrase must be ASCII without control characters; twine shows it to the user. */
export function reasonPhrase(message: string): string {
  return message
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\s+/g, ' ')
    .slice(0, 500)
    .trim();
}

/** Fastify error handler: a status and a plain-text message a user can act on. */
export function handleError(err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  let status: number;
  let message: string;
  if (isPyedgeError(err)) {
    status = err.status;
    message = err.message;
    request.log.info({ code: err.code, status, ...err.context }, 'request refused');
  } else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
    status = err.statusCode;
    message = err.message;
  } else {
    status = 500;
    message = 'Internal server error. The problem has been logged.';
    request.log.error({ err }, 'request failed');
  }
  reply.raw.statusMessage = reasonPhrase(message);
  void reply.code(status).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(`${status} ${message}\n`);
}
