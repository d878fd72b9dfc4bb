/** What one sync batch did: returned, never thrown halfway (a failed batch records nothing). */
import { isPyedgeError } from '../core/errors.js';

export interface BatchFailure {
  /** The project it concerns, or null for the batch as a whole. */
  readonly project: string | null;
  readonly code: string;
  readonly message: string;
}

export interface BatchResult {
  /** True when the batch got as far as recording its serial (or had nothing to record). */
  readonly ok: boolean;
  /** The serial the tree's state object records after the batch (-1: none yet). */
  readonly serial: number;
  /** The serial before the batch. */
  readonly previousSerial: number;
  /** Projects whose pages were written. */
  readonly projectsWritten: readonly string[];
  /** Projects the source no longer has (their pages are deleted once the root stops listing them). */
  readonly projectsRemoved: readonly string[];
  readonly filesCopied: number;
  readonly bytesCopied: number;
  /** Files and pages deleted after nothing linked them any more. */
  readonly keysDeleted: number;
  readonly rootWritten: boolean;
  readonly failures: readonly BatchFailure[];
  readonly ms: number;
}

/** Collects a batch's counts as it runs. */
export class BatchRecorder {
  readonly #started = Date.now();
  readonly written: string[] = [];
  readonly removed: string[] = [];
  readonly failures: BatchFailure[] = [];
  filesCopied = 0;
  bytesCopied = 0;
  keysDeleted = 0;
  rootWritten = false;

  constructor(readonly previousSerial: number) {}

  get failed(): boolean {
    return this.failures.length > 0;
  }

  fail(project: string | null, err: unknown): void {
    const code = isPyedgeError(err) ? err.code : err instanceof Error && err.name === 'AbortError' ? 'ABORTED' : 'PYEDGE_STORAGE';
    const message = err instanceof Error ? err.message : String(err);
    this.failures.push({ project, code, message });
  }

  finish(serial: number): BatchResult {
    return {
      ok: !this.failed,
      serial,
      previousSerial: this.previousSerial,
      projectsWritten: [...this.written],
      projectsRemoved: [...this.removed],
      filesCopied: this.filesCopied,
      bytesCopied: this.bytesCopied,
      keysDeleted: this.keysDeleted,
      rootWritten: this.rootWritten,
      failures: [...this.failures],
      ms: Date.now() - this.#started,
    };
  }
}

/** One line for logs and the terminal. */
export function describeBatch(r: BatchResult): string {
  const parts = [
    `serial ${r.serial < 0 ? 'none' : r.serial}`,
    `${r.projectsWritten.length} project${r.projectsWritten.length === 1 ? '' : 's'} written`,
    `${r.projectsRemoved.length} removed`,
    `${r.filesCopied} file${r.filesCopied === 1 ? '' : 's'} copied (${r.bytesCopied} bytes)`,
    `${r.keysDeleted} deleted`,
  ];
  if (r.rootWritten) parts.push('root written');
  const head = r.ok ? 'synced' : 'sync failed';
  const tail = r.failures.length > 0 ? `; ${r.failures.map((f) => (f.project ? `${f.project}: ${f.message}` : f.message)).join('; ')}` : '';
  return `${head}: ${parts.join(', ')} in ${r.ms} ms${tail}`;
}
