/**
 * The upload benchmark's reference server: node's http module reading each
 * request to the end and answering 200, nothing else. Run as a child process:
 * `node dist/bench/lib/sink-server.js`; prints its URL.
 */
import http from 'node:http';

const server = http.createServer((req, res) => {
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': '3' });
    res.end('OK\n');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`sink listening on http://127.0.0.1:${port}/\n`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
