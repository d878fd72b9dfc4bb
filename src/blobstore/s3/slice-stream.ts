/** Cuts a byte range out of a stream, for S3-compatible servers that answer a Range with more than was asked. */
import { Readable } from 'node:stream';

/**
 * A stream of `length` bytes of `source`, starting `skip` bytes in. It stops
 * reading (and destroys `source`) once it has them, and fails if `source`
 * ends early.
 */
export function sliceStream(source: Readable, skip: number, length: number): Readable {
  async function* slice(): AsyncGenerator<Buffer> {
    let toSkip = skip;
    let remaining = length;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        let piece = chunk;
        if (toSkip > 0) {
          const dropped = Math.min(toSkip, piece.length);
          piece = piece.subarray(dropped);
          toSkip -= dropped;
        }
        if (piece.length === 0) continue;
        if (piece.length > remaining) piece = piece.subarray(0, remaining);
        remaining -= piece.length;
        yield piece;
        if (remaining === 0) return;
      }
      if (remaining > 0) throw new Error(`the S3 server sent ${length - remaining} of ${length} bytes`);
    } finally {
      source.destroy();
    }
  }
  return Readable.from(slice(), { objectMode: false });
}
