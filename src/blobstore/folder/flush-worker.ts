/**
 * A flush thread of the folder store (see flush-threads.ts): for each request
 * it opens the path read-only, flushes it and closes it, one at a time, and
 * answers with the request's id and the error, if any.
 */
import { closeSync, fdatasyncSync, fsyncSync, openSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { toThreadError } from '../../runtime/worker-channel.js';
import type { FlushReply, FlushRequest } from './flush-threads.js';

const port = parentPort;
if (!port) throw new Error('flush-worker.js runs as a worker thread of the folder blob store');

port.on('message', ([id, path, dataOnly]: FlushRequest) => {
  let reply: FlushReply = [id, null];
  try {
    const fd = openSync(path, 'r');
    try {
      if (dataOnly) fdatasyncSync(fd);
      else fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    reply = [id, toThreadError(err)];
  }
  port.postMessage(reply);
});
