/**
 * The root index's worker thread (started by WorkerRootRenderer): opens its own
 * connection to the origin's database, used only to read, and renders the root
 * into files on request, one rendering at a time. SQLite in WAL mode lets this
 * second connection read while the origin writes; PostgreSQL gets its own pool.
 *
 * Once the first rendering is done, readers always have one to fall back on, so
 * later renderings need not compete with requests for the CPU: on Linux, where a
 * thread has its own nice value, this thread lowers its priority.
 */
import { constants, setPriority } from 'node:os';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createDatabase } from '../db/create-database.js';
import { renderRootFiles } from './root-render.js';
import type { RootWorkerData, RootWorkerReply, RootWorkerRequest } from './root-renderer.js';

const port = parentPort;
if (!port) throw new Error('root-worker.js runs only as a worker thread');
const data = workerData as RootWorkerData;
const db = createDatabase(data.dbUrl);
let count = 0;
let background = false;
/** Renderings run one after another, in the order asked. */
let queue: Promise<void> = Promise.resolve();

/** Lower this thread's priority (only this thread's on Linux; elsewhere it would be the whole process'). */
function runInBackground(): void {
  if (background || process.platform !== 'linux') return;
  background = true;
  try {
    setPriority(constants.priority.PRIORITY_BELOW_NORMAL);
  } catch {
    // Not permitted: render at normal priority.
  }
}

async function render(id: number, minSerial: number): Promise<RootWorkerReply> {
  try {
    const rendering = await renderRootFiles(db, data.dir, minSerial, data.pageSize, `${process.pid}-${threadId}-${++count}`);
    runInBackground();
    return { id, ok: true, rendering };
  } catch (err) {
    return { id, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

port.on('message', (request: RootWorkerRequest) => {
  if (request.type === 'render') {
    queue = queue.then(async () => port.postMessage(await render(request.id, request.minSerial)));
  } else {
    queue = queue.then(async () => {
      await db.close();
      port.close();
    });
  }
});
