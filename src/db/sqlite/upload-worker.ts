/**
 * The SQLite upload thread: its own connection to the database file, on which
 * it applies and commits the groups of uploads the main thread sends, one
 * group at a time. Started by UploadThread with `workerData.path`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openSqlite } from './open-sqlite.js';
import { UploadGroup } from './upload-group.js';
import { encodeError, encodeSettled, type Reply, type Request } from './upload-wire.js';

const port = parentPort;
if (!port) throw new Error('upload-worker.js runs as a worker thread of SqliteDatabase');

const raw = openSqlite((workerData as { path: string }).path);
const group = new UploadGroup(raw);
let queue = Promise.resolve();

port.on('message', (msg: Request) => {
  queue = queue.then(async () => {
    if (msg.type === 'close') {
      raw.close();
      port.close();
      return;
    }
    let reply: Reply;
    try {
      const results = await group.run(msg.inputs);
      reply = { type: 'committed', id: msg.id, results: results.map(encodeSettled) };
    } catch (err) {
      reply = { type: 'failed', id: msg.id, error: encodeError(err) };
    }
    port.postMessage(reply);
  });
});
