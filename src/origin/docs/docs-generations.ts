/**
 * Where documentation lives in the blob store. Each upload is a generation,
 * written under its own prefix; one small pointer blob names the current one:
 *
 *   docs/<name>/current                 {"generation": "…", …}   (replaced by one put)
 *   docs/<name>/<generation>/<path>     the files of that upload  (never changed)
 *
 * A reader resolves the pointer, then reads inside that generation only, so it
 * sees the old documentation or the new, never a mix.
 */
import { randomBytes } from 'node:crypto';

/** What the pointer blob records. */
export interface DocsPointer {
  readonly generation: string;
  readonly files: number;
  /** Inflated bytes of all files. */
  readonly bytes: number;
  readonly uploadedAt: string;
  readonly uploadedBy: string | null;
}

/** Time-ordered (base-36 milliseconds, fixed width) then random, so ids sort by age and never collide. */
const GENERATION = /^([0-9a-z]{9})-[0-9a-f]{12}$/;

export function newGeneration(now: number = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`;
}

export function isGeneration(s: string): boolean {
  return GENERATION.test(s);
}

/** When a generation was created (ms since the epoch), or null for a string that is not one. */
export function generationTime(generation: string): number | null {
  const m = GENERATION.exec(generation);
  return m ? parseInt(m[1]!, 36) : null;
}

/** `docs/<name>/`: everything of one project's documentation. */
export function docsPrefix(normalizedName: string): string {
  return `docs/${normalizedName}/`;
}

export function generationPrefix(normalizedName: string, generation: string): string {
  return `docs/${normalizedName}/${generation}/`;
}

export function pointerKey(normalizedName: string): string {
  return `docs/${normalizedName}/current`;
}

export function encodePointer(pointer: DocsPointer): Buffer {
  return Buffer.from(JSON.stringify(pointer) + '\n');
}

/** The pointer in `bytes`, or null when it is not one (a reader then treats the docs as absent). */
export function decodePointer(bytes: Buffer): DocsPointer | null {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.generation !== 'string' || !isGeneration(o.generation)) return null;
  return {
    generation: o.generation,
    files: typeof o.files === 'number' ? o.files : 0,
    bytes: typeof o.bytes === 'number' ? o.bytes : 0,
    uploadedAt: typeof o.uploadedAt === 'string' ? o.uploadedAt : '',
    uploadedBy: typeof o.uploadedBy === 'string' ? o.uploadedBy : null,
  };
}
