/**
 * `pyedge verify --repair`: fix what verifyTree found, from the source. Bad
 * files are deleted (they are wrong anyway), every project with a problem is
 * fetched again with all its files checked, the root and state are rewritten,
 * and files no page links are deleted once they are old enough not to belong
 * to a publisher's batch that is still under way.
 */
import type { BatchResult } from './batch-result.js';
import type { SyncEngine } from './engine.js';
import type { StaticTree } from './static-tree.js';
import { verifyTree, type VerifyOptions, type VerifyReport } from './verify.js';

/** Unlinked files younger than this are left alone: a running publisher copies files before it links them. */
export const ORPHAN_MIN_AGE_MS = 15 * 60 * 1000;

export interface RepairResult {
  readonly batch: BatchResult;
  readonly orphansDeleted: number;
  /** The tree checked again after the repair. */
  readonly report: VerifyReport;
}

export async function repairTree(
  engine: SyncEngine,
  tree: StaticTree,
  found: VerifyReport,
  options: VerifyOptions & { readonly signal?: AbortSignal; readonly orphanMinAgeMs?: number } = {},
): Promise<RepairResult> {
  for (const key of found.corruptKeys) await tree.delete(key);
  await engine.open();
  const batch = await engine.runBatch({
    force: found.projectsToRepair,
    rewriteRoot: true,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const report = await verifyTree(tree, options);
  const kept: string[] = [];
  if (batch.ok) {
    const minAge = options.orphanMinAgeMs ?? ORPHAN_MIN_AGE_MS;
    for (const key of report.orphans) {
      const info = await tree.store.head(key).catch(() => null);
      if (info !== null && Date.now() - info.lastModified.getTime() >= minAge) await tree.delete(key);
      else kept.push(key);
    }
  }
  return { batch, orphansDeleted: batch.ok ? report.orphans.length - kept.length : 0, report: { ...report, orphans: batch.ok ? kept : report.orphans } };
}
