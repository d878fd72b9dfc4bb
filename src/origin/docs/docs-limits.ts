/** Bounds on the work one documentation upload can cause, so a hostile zip cannot exhaust the server. */

export interface DocsLimits {
  /** Most entries (files and folders) in the zip. */
  readonly maxEntries: number;
  /** Most bytes all files may inflate to, counted while inflating (headers are not trusted). */
  readonly maxTotalBytes: number;
  /** Refuse when the inflated total passes this many times the zip's own size. */
  readonly maxTotalRatio: number;
  /** Refuse when one entry inflates to more than this many times its compressed size. */
  readonly maxEntryRatio: number;
  /**
   * Ratios are checked once more than this many bytes (in total, or of one entry)
   * were inflated: small text files legitimately compress very well.
   */
  readonly ratioGraceBytes: number;
  /** Longest path inside the zip, in UTF-8 bytes (blob keys, with their `docs/<name>/<generation>/` prefix, must stay within 1024). */
  readonly maxPathBytes: number;
}

export const DEFAULT_DOCS_LIMITS: DocsLimits = Object.freeze({
  maxEntries: 10_000,
  maxTotalBytes: 200 * 1024 * 1024,
  maxTotalRatio: 100,
  maxEntryRatio: 200,
  ratioGraceBytes: 1024 * 1024,
  maxPathBytes: 768,
});

/** `n` bytes for a message: "200 MB", "1.5 KB", "12 bytes". */
export function formatBytes(n: number): string {
  const units = [
    [1024 ** 3, 'GB'],
    [1024 ** 2, 'MB'],
    [1024, 'KB'],
  ] as const;
  for (const [size, unit] of units) {
    if (n >= size) return `${Number((n / size).toFixed(1))} ${unit}`;
  }
  return `${n} bytes`;
}
