/** Start a server listening (node:http, or a net server speaking HTTP), for the servers that do not run on fastify (edge, proxy, metrics). */
import type { AddressInfo, Server } from 'node:net';

/** Listen on `host:port` (0: a free port); resolves to its base URL, `http://HOST:PORT` (IPv6 in brackets). */
export async function listenHttp(server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shown}:${address.port}`;
}
