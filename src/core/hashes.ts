/** Digests of distribution files and Warehouse's content-addressed paths. */
import { createHash, type Hash } from 'node:crypto';
import { Blake2b256, blake2b256 } from './blake2b.js';

/** The three digests PyPI records for every file. */
export interface FileDigests {
  readonly md5: string;
  readonly sha256: string;
  readonly blake2b_256: string;
}

/** Computes md5, sha256 and BLAKE2b-256 in one pass over streamed chunks. */
export class MultiHasher {
  private readonly md5: Hash = createHash('md5');
  private readonly sha256: Hash = createHash('sha256');
  private readonly b2 = new Blake2b256();
  size = 0;

  update(chunk: Uint8Array): void {
    this.md5.update(chunk);
    this.sha256.update(chunk);
    this.b2.update(chunk);
    this.size += chunk.length;
  }

  digest(): FileDigests {
    return {
      md5: this.md5.digest('hex'),
      sha256: this.sha256.digest('hex'),
      blake2b_256: Buffer.from(this.b2.digest()).toString('hex'),
    };
  }
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function blake2b256Hex(data: Uint8Array): string {
  return Buffer.from(blake2b256(data)).toString('hex');
}

/** Warehouse's file path: `packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<filename>`. */
export const PACKAGE_PATH = /^packages\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{60}\/[A-Za-z0-9._+!-]+$/;

/** Warehouse's file path of a file: see PACKAGE_PATH. */
export function packagePath(blake2b256: string, filename: string): string {
  return `packages/${blake2b256.slice(0, 2)}/${blake2b256.slice(2, 4)}/${blake2b256.slice(4)}/${filename}`;
}
