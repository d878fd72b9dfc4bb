/**
 * One registry of domain errors with stable codes. Domain code throws these;
 * only the HTTP layer maps a code to a status and a message for the user.
 */

/** Every code pyedge can raise, with the HTTP status the web layer gives it. */
export const ERROR_CODES = {
  PYEDGE_BAD_REQUEST: 400,
  PYEDGE_INVALID_NAME: 400,
  PYEDGE_INVALID_VERSION: 400,
  PYEDGE_INVALID_FILENAME: 400,
  PYEDGE_INVALID_DISTRIBUTION: 400,
  PYEDGE_INVALID_METADATA: 400,
  PYEDGE_METADATA_MISMATCH: 400,
  PYEDGE_DIGEST_MISMATCH: 400,
  PYEDGE_UNSUPPORTED_ACTION: 400,
  PYEDGE_UNAUTHENTICATED: 403,
  PYEDGE_FORBIDDEN: 403,
  PYEDGE_NOT_FOUND: 404,
  PYEDGE_BLOB_NOT_FOUND: 404,
  PYEDGE_NOT_ACCEPTABLE: 406,
  PYEDGE_FILE_EXISTS: 400,
  PYEDGE_FILENAME_REUSED: 400,
  PYEDGE_SDIST_EXISTS: 400,
  PYEDGE_PROJECT_NAME_CONFLICT: 403,
  PYEDGE_UPLOAD_IN_PROGRESS: 409,
  PYEDGE_TOO_LARGE: 413,
  PYEDGE_RANGE_NOT_SATISFIABLE: 416,
  PYEDGE_CONFIG: 500,
  PYEDGE_STORAGE: 500,
  PYEDGE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A domain error: a stable code, a message a user can act on, and context. */
export class PyedgeError extends Error {
  readonly code: ErrorCode;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PyedgeError';
    this.code = code;
    this.context = Object.freeze({ ...context });
  }

  /** The HTTP status the web layer answers with. */
  get status(): number {
    return ERROR_CODES[this.code];
  }
}

/** A blob that is not in the store: each back-end maps its own "missing" to this. */
export class BlobNotFoundError extends PyedgeError {
  constructor(key: string, options?: { cause?: unknown }) {
    super('PYEDGE_BLOB_NOT_FOUND', `no such blob: ${key}`, { key }, options);
    this.name = 'BlobNotFoundError';
  }
}

export function isPyedgeError(err: unknown): err is PyedgeError {
  return err instanceof PyedgeError;
}
