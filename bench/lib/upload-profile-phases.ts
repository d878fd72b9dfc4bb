/** The origin's upload path cut into phases, for reading a CPU profile taken during the upload benchmark. */
import type { CallFrame, ProfileBucket } from './cpu-profile.js';

const inUrl = (part: string) => (stack: readonly CallFrame[]) => stack.some((f) => f.url.includes(part));
const inFunction = (name: string) => (stack: readonly CallFrame[]) => stack.some((f) => f.functionName === name);

/** Ordered: a sample belongs to the first phase that matches its stack. */
export const UPLOAD_PHASES: readonly ProfileBucket[] = [
  { name: 'garbage collection', match: (s) => s[0]?.functionName === '(garbage collector)' },
  {
    name: 'SQLite COMMIT on the main thread (kysely transactions; uploads commit on their own thread)',
    match: (s) => s[0]?.url.includes('sqlite-driver') === true && inFunction('commitTransaction')(s),
  },
  { name: 'other SQLite statements (better-sqlite3 native)', match: (s) => s[0]?.url.includes('sqlite-driver') === true },
  { name: 'SQLite reads before an upload (prepared statements)', match: inUrl('dist/src/db/sqlite/sqlite-database') },
  { name: 'blob store (mkdir, rename; flushes handed to its flush threads)', match: inUrl('dist/src/blobstore/') },
  { name: 'handing groups of uploads to the SQLite upload thread', match: (s) => inUrl('dist/src/db/sqlite/')(s) || inFunction('postMessage')(s) },
  { name: 'kysely (query building, compiling, driver)', match: inUrl('node_modules/kysely/') },
  { name: 'PostgreSQL client (pg)', match: (s) => inUrl('node_modules/pg')(s) },
  { name: 'BLAKE2b-256 (WebAssembly, src/core/blake2b)', match: (s) => inUrl('dist/src/core/blake2b')(s) || inUrl('wasm://')(s) },
  { name: 'md5 + sha256 (node:crypto)', match: inUrl('dist/src/core/hashes') },
  { name: 'multipart parsing (@fastify/busboy)', match: inUrl('node_modules/@fastify/busboy/') },
  { name: 'wheel METADATA read (yauzl, dist-metadata)', match: (s) => inUrl('node_modules/yauzl/')(s) || inUrl('node_modules/pend/')(s) || inUrl('upload/dist-metadata')(s) },
  { name: 'spooling the upload (upload-form: hashing, one write)', match: inUrl('upload/upload-form') },
  { name: 'upload checks (upload-service, core)', match: (s) => inUrl('upload/upload-service')(s) || inUrl('dist/src/core/')(s) || inUrl('origin/tokens')(s) },
  { name: 'fastify + node http', match: (s) => inUrl('node_modules/fastify')(s) || inUrl('node_modules/find-my-way')(s) || inUrl('node:_http')(s) || inUrl('node:net')(s) },
  { name: 'node streams / fs callbacks (no pyedge frame on the stack)', match: (s) => inUrl('node:internal/streams')(s) || inUrl('node:internal/fs')(s) || inUrl('node:fs')(s) },
];

