/**
 * A blob store in an S3-compatible bucket (AWS S3, R2, MinIO, Ceph): key `k`
 * is the object `<prefix>/k`. S3 makes each PUT atomic, so readers see whole
 * blobs only.
 */
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Readable, addAbortSignal } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { BlobNotFoundError, PyedgeError } from '../../core/errors.js';
import type { BlobBody, BlobEntry, BlobInfo, BlobStore, ByteRange, OpOptions, PutOptions } from '../blob-store.js';
import { assertValidKey, assertValidPrefix, assertValidRange, rangeNotSatisfiable } from '../blob-keys.js';
import { sliceStream } from './slice-stream.js';

/** The object headers a put sets: content type, Cache-Control, and surrogate headers as user metadata. */
interface ObjectHeaders {
  readonly ContentType?: string;
  readonly CacheControl?: string;
  readonly Metadata?: Record<string, string>;
}

function objectHeaders({ contentType, cache }: PutOptions): ObjectHeaders {
  const metadata: Record<string, string> = {};
  if (cache?.surrogateKey) metadata['surrogate-key'] = cache.surrogateKey;
  if (cache?.surrogateControl) metadata['surrogate-control'] = cache.surrogateControl;
  return {
    ...(contentType !== undefined ? { ContentType: contentType } : {}),
    ...(cache?.cacheControl ? { CacheControl: cache.cacheControl } : {}),
    ...(Object.keys(metadata).length > 0 ? { Metadata: metadata } : {}),
  };
}

/** When the SDK adds checksums: 'WHEN_REQUIRED' keeps s3rver and older S3-compatible stores working. */
export type ChecksumMode = 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';

/** Where and how to reach the bucket. Unset fields come from the usual AWS environment. */
export interface S3BlobStoreOptions {
  readonly bucket: string;
  /** Keys are stored under `<prefix>/`; empty stores them at the bucket's top. */
  readonly prefix?: string;
  /** e.g. `http://127.0.0.1:9000`; default: `AWS_ENDPOINT_URL` as the SDK reads it, else AWS. */
  readonly endpoint?: string;
  /** Default: `AWS_REGION`, else `us-east-1`. */
  readonly region?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which MinIO, Ceph and s3rver need. Default: true. */
  readonly forcePathStyle?: boolean;
  /** Default: 'WHEN_REQUIRED'. */
  readonly requestChecksumCalculation?: ChecksumMode;
  /** Default: 'WHEN_REQUIRED'. */
  readonly responseChecksumValidation?: ChecksumMode;
  /** Default: the SDK's credential chain (environment, profile, instance role). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Part size of multipart uploads of streams, in bytes. Default: 8 MiB (S3's minimum is 5 MiB). */
  readonly partSizeBytes?: number;
}

/** S3's limit for a single PUT; bigger files go up in parts. */
const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;
const DEFAULT_PART_SIZE_BYTES = 8 * 1024 ** 2;

export class S3BlobStore implements BlobStore {
  readonly description: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  /** The store's prefix with its trailing `/`, or empty. */
  readonly #base: string;
  readonly #partSize: number;

  constructor(options: S3BlobStoreOptions) {
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (prefix !== '') assertValidKey(prefix);
    if (!options.bucket) throw new PyedgeError('PYEDGE_CONFIG', 'an S3 blob store needs a bucket name');
    this.#bucket = options.bucket;
    this.#base = prefix === '' ? '' : `${prefix}/`;
    this.#partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES;
    this.#client = new S3Client({
      region: options.region ?? process.env['AWS_REGION'] ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle ?? true,
      requestChecksumCalculation: options.requestChecksumCalculation ?? 'WHEN_REQUIRED',
      responseChecksumValidation: options.responseChecksumValidation ?? 'WHEN_REQUIRED',
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    });
    const where = options.endpoint ?? process.env['AWS_ENDPOINT_URL'];
    this.description = `s3://${this.#bucket}/${prefix}${where ? ` at ${where}` : ''}`;
  }

  async put(key: string, body: Uint8Array | Readable, options: PutOptions = {}): Promise<void> {
    const Key = this.#objectKey(key);
    const { signal } = options;
    const headers = objectHeaders(options);
    try {
      if (body instanceof Uint8Array) {
        await this.#client.send(
          new PutObjectCommand({ Bucket: this.#bucket, Key, Body: body, ContentLength: body.byteLength, ...headers }),
          { abortSignal: signal },
        );
        return;
      }
      await this.#upload(Key, body, headers, signal);
    } catch (err) {
      throw this.#error(err, key, 'put');
    }
  }

  /** Uploads the file, then removes it: the caller gave it to the store, as with the folder store. */
  async putFile(key: string, localPath: string, options: PutOptions = {}): Promise<void> {
    const Key = this.#objectKey(key);
    const { signal } = options;
    const headers = objectHeaders(options);
    try {
      const { size } = await stat(localPath);
      const body = createReadStream(localPath);
      try {
        if (size > MAX_SINGLE_PUT_BYTES) {
          await this.#upload(Key, body, headers, signal);
        } else {
          await this.#client.send(
            new PutObjectCommand({ Bucket: this.#bucket, Key, Body: body, ContentLength: size, ...headers }),
            { abortSignal: signal },
          );
        }
      } finally {
        body.destroy();
      }
    } catch (err) {
      throw this.#error(err, key, `put (from ${localPath})`);
    }
    await rm(localPath, { force: true }).catch(() => undefined);
  }

  async get(key: string, options: OpOptions & { readonly range?: ByteRange } = {}): Promise<BlobBody> {
    const Key = this.#objectKey(key);
    const { signal, range } = options;
    if (range) assertValidRange(range, key);
    try {
      const res = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
        { abortSignal: signal },
      );
      let body = toReadable(res.Body);
      let contentLength = res.ContentLength ?? 0;
      let size = contentLength;
      if (range) {
        // "bytes 0-9/1234". A server that ignored the Range answers 200 with the whole blob, and
        // some (s3rver for "bytes=0-0") send more than asked: cut out what was asked for.
        const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
        // Without a Content-Range the server ignored the Range (or sent no usable length): ask for the size.
        size = match ? Number(match[3]) : (await this.head(key, { ...(signal ? { signal } : {}) })).size;
        const sentStart = match ? Number(match[1]) : 0;
        const sentEnd = match ? Number(match[2]) : size - 1;
        if (range.start >= size) {
          body.destroy();
          throw rangeNotSatisfiable(range, key, size);
        }
        const end = Math.min(range.end, size - 1);
        if (sentStart !== range.start || sentEnd !== end) {
          if (sentStart > range.start || sentEnd < end) {
            body.destroy();
            throw new PyedgeError('PYEDGE_STORAGE', `the S3 server sent bytes ${sentStart}-${sentEnd} of blob ${key} for a request of ${range.start}-${end}`, { key });
          }
          body = sliceStream(body, range.start - sentStart, end - range.start + 1);
        }
        contentLength = end - range.start + 1;
      }
      if (signal) addAbortSignal(signal, body);
      return { size, lastModified: res.LastModified ?? new Date(0), body, contentLength };
    } catch (err) {
      throw this.#error(err, key, 'get', range);
    }
  }

  async head(key: string, options: OpOptions = {}): Promise<BlobInfo> {
    const Key = this.#objectKey(key);
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key }), { abortSignal: options.signal });
      return { size: res.ContentLength ?? 0, lastModified: res.LastModified ?? new Date(0) };
    } catch (err) {
      throw this.#error(err, key, 'head');
    }
  }

  async delete(key: string, options: OpOptions = {}): Promise<void> {
    const Key = this.#objectKey(key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key }), { abortSignal: options.signal });
    } catch (err) {
      const mapped = this.#error(err, key, 'delete');
      // S3 answers 204 for a missing key; some compatible stores answer 404.
      if (mapped instanceof BlobNotFoundError) return;
      throw mapped;
    }
  }

  async *list(prefix: string, options: OpOptions = {}): AsyncIterable<BlobEntry> {
    assertValidPrefix(prefix);
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#base + prefix, ContinuationToken: token }),
          { abortSignal: options.signal },
        );
      } catch (err) {
        throw this.#error(err, prefix, 'list');
      }
      // S3 lists in key order; servers that walk folders (s3rver, MinIO's old FS mode) put
      // "a/x" before "a-b". Sorting each page fixes listings that fit in one page.
      const entries: BlobEntry[] = [];
      for (const object of res.Contents ?? []) {
        if (object.Key !== undefined) entries.push({ key: object.Key.slice(this.#base.length), size: object.Size ?? 0 });
      }
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      yield* entries;
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  /** Every S3 PUT is durable when it answers: nothing to flush. */
  async sync(): Promise<void> {}

  async close(): Promise<void> {
    this.#client.destroy();
  }

  #objectKey(key: string): string {
    assertValidKey(key);
    return this.#base + key;
  }

  /** A stream of unknown length: multipart when it is big, one PUT when it fits in a part. */
  async #upload(Key: string, body: Readable, headers: ObjectHeaders, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key, Body: body, ...headers },
      partSize: this.#partSize,
      queueSize: 4,
      leavePartsOnError: false,
    });
    const onAbort = (): void => void upload.abort().catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Maps the SDK's errors to domain errors; aborts pass through unchanged. */
  #error(err: unknown, key: string, action: string, range?: ByteRange): unknown {
    if (err instanceof PyedgeError) return err;
    if (err instanceof Error && err.name === 'AbortError') return err;
    const name = err instanceof Error ? err.name : 'Error';
    const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
    if (name === 'NoSuchBucket') {
      return new PyedgeError('PYEDGE_CONFIG', `S3 bucket ${this.#bucket} does not exist (create it, or fix the blob store URL)`, { bucket: this.#bucket }, { cause: err });
    }
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return new BlobNotFoundError(key, { cause: err });
    if (range && (name === 'InvalidRange' || status === 416)) return rangeNotSatisfiable(range, key, -1, err);
    const message = err instanceof Error ? err.message : String(err);
    return new PyedgeError(
      'PYEDGE_STORAGE',
      `S3 ${action} of blob ${key} in ${this.description} failed: ${name}${status ? ` (HTTP ${status})` : ''}: ${message}`,
      { key, bucket: this.#bucket, name, status },
      { cause: err },
    );
  }
}

/** The SDK's Node body is an IncomingMessage; other runtimes give web streams or Blobs. */
function toReadable(body: unknown): Readable {
  if (body instanceof Readable) return body;
  if (body instanceof ReadableStream) return Readable.fromWeb(body as WebReadableStream<Uint8Array>);
  if (body === undefined) return Readable.from([]);
  throw new PyedgeError('PYEDGE_STORAGE', 'the S3 client returned a body of an unexpected kind');
}
