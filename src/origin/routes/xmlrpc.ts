/**
 * `POST /pypi` (and `/pypi/`, `/RPC2`): the XML-RPC mirror API. Every answer is
 * HTTP 200 with a `<methodResponse>`: a result, or a fault for a body that is
 * not a valid call, an unknown method, wrong parameters or a failure.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { OriginContext } from '../app.js';
import { decodeMethodCall, encodeFault, encodeResponse, FAULT, MAX_REQUEST_BYTES, XmlRpcFault } from '../xmlrpc/xmlrpc-codec.js';
import { dispatch } from '../xmlrpc/xmlrpc-methods.js';
import { mirrorApiMethods } from '../xmlrpc/mirror-api.js';

/** Marks a body that was cut off at the size limit. */
const TOO_LARGE = Symbol('too large');

export const xmlrpcRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const methods = mirrorApiMethods({ db: context.db, baseUrl: () => context.baseUrl() });
  const log = context.logger.child({ component: 'xmlrpc' });

  // Any body, whatever its Content-Type claims, is read here (bounded), so that a bad one
  // gets a fault rather than fastify's 400/413/415. Scoped to this plugin's routes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    const declared = Number(request.headers['content-length']);
    if (declared > MAX_REQUEST_BYTES) {
      payload.resume();
      done(null, TOO_LARGE);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    payload.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        settled = true;
        chunks.length = 0;
        done(null, TOO_LARGE);
      } else chunks.push(chunk);
    });
    payload.on('end', () => {
      if (!settled) {
        settled = true;
        done(null, Buffer.concat(chunks));
      }
    });
    payload.on('error', (err) => {
      if (!settled) {
        settled = true;
        done(err, undefined);
      }
    });
  });

  const fault = (reply: FastifyReply, f: XmlRpcFault): string => {
    void reply.header('content-type', 'text/xml; charset=utf-8').header('cache-control', 'no-store');
    return encodeFault(f.faultCode, f.faultString);
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<string | Readable> => {
    const body = request.body;
    let methodName = '';
    try {
      if (body === TOO_LARGE) {
        throw new XmlRpcFault(FAULT.INVALID_XMLRPC, `server error; invalid xml-rpc. the request is larger than ${MAX_REQUEST_BYTES} bytes`);
      }
      const call = decodeMethodCall(Buffer.isBuffer(body) ? body : Buffer.alloc(0));
      methodName = call.methodName;
      const result = await dispatch(methods, call, (err) => log.error({ err, method: call.methodName }, 'xml-rpc method failed'));
      void reply.header('content-type', 'text/xml; charset=utf-8').header('cache-control', 'no-store');
      // Small answers go out whole (with a Content-Length); large ones stream in chunks.
      const chunks = encodeResponse(result);
      const first = chunks.next();
      const second = chunks.next();
      if (second.done) return first.done ? '' : first.value;
      const head = [first.value as string, second.value];
      return Readable.from((function* () {
        yield* head;
        yield* chunks;
      })());
    } catch (err) {
      if (!(err instanceof XmlRpcFault)) throw err;
      request.log.info({ method: methodName || undefined, faultCode: err.faultCode }, 'xml-rpc fault');
      return fault(reply, err);
    }
  };

  for (const path of ['/pypi', '/pypi/', '/RPC2']) app.post(path, handle);
};
