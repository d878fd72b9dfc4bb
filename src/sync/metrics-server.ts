/**
 * Serves the publisher's metrics at `GET /metrics` for Prometheus to scrape
 * (`pyedge publish --watch --metrics HOST:PORT`, loopback unless told
 * otherwise). One route on node:http: nothing else to serve, nothing to
 * configure.
 */
import { createServer, type Server } from 'node:http';
import type { PublisherMetrics } from './metrics.js';
import { listenHttp } from '../runtime/listen.js';

export interface MetricsServer {
  /** `http://HOST:PORT/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

export async function serveMetrics(metrics: PublisherMetrics, host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('Method not allowed\n');
      return;
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`Could not collect the metrics: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  const url = await listenHttp(server, port, host);
  return {
    url: `${url}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
