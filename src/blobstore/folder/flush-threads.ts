/**
 * Flushes (fsync, fdatasync) on threads of their own. A flush waits for the
 * disk, often for milliseconds; in node's thread pool (four threads unless
 * UV_THREADPOOL_SIZE says otherwise) each one holds a thread that every other
 * file operation, inflate and DNS lookup of the process queues behind. An
 * upload makes four flushes and a dozen quick file operations, so under load
 * the quick ones spent most of their time waiting for flushes to end. Here
 * each flush thread runs one flush at a time, and the thread pool keeps to
 * the quick work.
 */
import { WorkerChannel, fromThreadError, leastBusy, type ThreadError } from '../../runtime/worker-channel.js';

/** How many flushes can wait for the disk at once. */
const THREADS = 4;

/** To a flush thread: request id, path, whether to flush only the data (fdatasync). */
export type FlushRequest = readonly [id: number, path: string, dataOnly: boolean];
/** From a flush thread: request id and the error, if the flush failed. */
export type FlushReply = readonly [id: number, error: ThreadError | null];

const threads: WorkerChannel<FlushReply>[] = [];

/**
 * Open `path` read-only, flush it (only its data and size when `dataOnly`)
 * and close it, on the least busy flush thread. Errors carry the `code` of
 * the failed call, as node's own do.
 */
export async function flushOnThread(path: string, dataOnly: boolean): Promise<void> {
  const thread = leastBusy(threads, THREADS, () => new WorkerChannel<FlushReply>(new URL('./flush-worker.js', import.meta.url), 'a flush thread', ([id]) => id));
  const [, error] = await thread.request((id): FlushRequest => [id, path, dataOnly]);
  if (error) throw fromThreadError(error);
}
