/** The part of s3rver's API (it ships no types) that the test helpers use. */
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  interface S3rverBucketConfig {
    readonly name: string;
    /** CORS or website configuration XML documents. */
    readonly configs?: readonly (string | Buffer)[];
  }

  interface S3rverOptions {
    readonly address?: string;
    readonly port?: number;
    readonly silent?: boolean;
    readonly directory?: string;
    readonly resetOnClose?: boolean;
    readonly allowMismatchedSignatures?: boolean;
    readonly vhostBuckets?: boolean;
    readonly configureBuckets?: readonly S3rverBucketConfig[];
  }

  class S3rver {
    constructor(options?: S3rverOptions);
    /** Creates the configured buckets and listens; resolves to the bound address. */
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }

  export = S3rver;
}
