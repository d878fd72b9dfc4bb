/**
 * What crosses between the main thread and the SQLite upload thread. Errors
 * lose their class on the way (structured clone keeps only a plain Error), so
 * a refusal is sent as its code, message and context and made a PyedgeError
 * again on arrival.
 */
import { PyedgeError, type ErrorCode } from '../../core/errors.js';
import type { AddFileInput, AddFileResult } from '../database.js';
import type { Settled } from './group-commit.js';

export interface WireError {
  readonly pyedge: boolean;
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly context?: Readonly<Record<string, unknown>>;
}

export type WireSettled = { readonly ok: true; readonly value: AddFileResult } | { readonly ok: false; readonly error: WireError };

/** Main thread → upload thread. */
export type Request = { readonly type: 'commit'; readonly id: number; readonly inputs: readonly AddFileInput[] } | { readonly type: 'close' };

/** Upload thread → main thread: each upload's outcome, or the failure of the whole group. */
export type Reply =
  | { readonly type: 'committed'; readonly id: number; readonly results: readonly WireSettled[] }
  | { readonly type: 'failed'; readonly id: number; readonly error: WireError };

export function encodeError(err: unknown): WireError {
  if (err instanceof PyedgeError) return { pyedge: true, name: err.name, message: err.message, code: err.code, context: { ...err.context } };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { pyedge: false, name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { pyedge: false, name: 'Error', message: String(err) };
}

export function decodeError(w: WireError): Error {
  if (w.pyedge) return new PyedgeError(w.code as ErrorCode, w.message, { ...w.context });
  const err = new Error(w.message);
  err.name = w.name;
  if (w.code !== undefined) Object.assign(err, { code: w.code });
  return err;
}

export function encodeSettled(s: Settled<AddFileResult>): WireSettled {
  return s.ok ? s : { ok: false, error: encodeError(s.error) };
}

export function decodeSettled(s: WireSettled): Settled<AddFileResult> {
  return s.ok ? s : { ok: false, error: decodeError(s.error) };
}
