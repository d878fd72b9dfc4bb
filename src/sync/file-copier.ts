/**
 * Copies one file from the source into the tree by streaming, checking its
 * SHA-256 (and size) on the way: a mismatch fails the stream, so the store
 * never puts the blob (the folder store drops its temp file, S3 never
 * completes the upload).
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import { PyedgeError } from '../core/errors.js';
import { withRetry, type BackoffPolicy } from './retry.js';
import type { SyncSource } from './source.js';
import type { StaticTree } from './static-tree.js';

/** What the copied bytes must be. */
export interface ExpectedFile {
  readonly sha256: string;
  readonly size: number | null;
}

/** Passes bytes through and fails at the end unless they hash to `expected`. */
export class DigestCheck extends Transform {
  readonly #hash: Hash = createHash('sha256');
  #size = 0;

  constructor(
    private readonly key: string,
    private readonly expected: ExpectedFile,
  ) {
    super();
  }

  get size(): number {
    return this.#size;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const sha256 = this.#hash.digest('hex');
    if (sha256 !== this.expected.sha256 || (this.expected.size !== null && this.#size !== this.expected.size)) {
      done(
        new PyedgeError(
          'PYEDGE_DIGEST_MISMATCH',
          `The source's ${this.key} has sha256 ${sha256} (${this.#size} bytes), but its page says ${this.expected.sha256}` +
            `${this.expected.size !== null ? ` (${this.expected.size} bytes)` : ''}; not copied.`,
          { key: this.key },
        ),
      );
      return;
    }
    done();
  }
}

/** Copies `key` from `source` to `tree`, checked; retries transient failures. Resolves to the bytes copied. */
export function copyFile(
  source: SyncSource,
  tree: StaticTree,
  key: string,
  expected: ExpectedFile,
  options: { attempts?: number; backoff?: BackoffPolicy; signal?: AbortSignal | undefined } = {},
): Promise<number> {
  return withRetry(
    async () => {
      const body = await source.openFile(key, options.signal);
      const check = new DigestCheck(key, expected);
      // pipeline forwards a failure of the download into `check`, so the put sees it.
      pipeline(body, check, () => undefined);
      await tree.putFile(key, check);
      return check.size;
    },
    { attempts: options.attempts ?? 3, signal: options.signal, ...(options.backoff ? { policy: options.backoff } : {}) },
  );
}
