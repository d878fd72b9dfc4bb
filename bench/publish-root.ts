/**
 * Rewriting the root index of a large tree, as the publisher does: the
 * listing of a tree that `bench/publish-full.ts --keep DIR` built is read from
 * its JSON root, then written as the root (JSON and both HTML keys) into a
 * scratch folder, first whole (no block of it rendered yet, as after a
 * start), then again with one project's serial moved (an upload), several
 * times. Reports wall and CPU time per write, and the process's RSS. Also
 * times how the publisher finds the tree's projects on start and at each
 * reconcile (`StaticTree.projectNames`). Run after a build:
 * `node dist/bench/publish-root.js --tree DIR/tree`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FolderBlobStore } from '../src/blobstore/folder/folder-blob-store.js';
import type { ProjectListing } from '../src/core/model.js';
import { normalizeName } from '../src/core/names.js';
import { StaticTree } from '../src/sync/static-tree.js';
import { fixed, markdownTable, median } from './lib/stats.js';

const { values: opts } = parseArgs({
  options: {
    tree: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help || opts.tree === undefined) {
  process.stdout.write('node dist/bench/publish-root.js --tree DIR [--rounds 5]\n  --tree DIR  a tree built by pyedge publish (e.g. publish-full.js --keep K: K/tree); only read\n');
  process.exit(opts.help ? 0 : 2);
}

interface Timing {
  readonly wallMs: number;
  readonly cpuMs: number;
}

async function timed(fn: () => Promise<unknown>): Promise<Timing> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return { wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
}

async function main(): Promise<void> {
  const source = new FolderBlobStore(opts.tree!);
  const scratchDir = await mkdtemp(join(tmpdir(), 'pyedge-bench-root-'));
  const scratch = new FolderBlobStore(scratchDir);
  try {
    const names = await timed(() => new StaticTree(source).projectNames());
    const bytes = await new StaticTree(source).read('simple/index.v1_json');
    if (bytes === null) throw new Error(`${opts.tree} has no simple/index.v1_json: build a tree first`);
    const doc = JSON.parse(bytes.toString('utf8')) as { meta: { '_last-serial': number }; projects: { name: string; '_last-serial': number }[] };
    const projects: ProjectListing[] = doc.projects.map((p) => ({ name: p.name, normalizedName: normalizeName(p.name), lastSerial: p['_last-serial'] }));
    let serial = doc.meta['_last-serial'];
    const tree = new StaticTree(scratch);
    const first = await timed(() => tree.writeRoot(projects, serial, true));
    const again: Timing[] = [];
    for (let round = 0; round < Number(opts.rounds); round++) {
      serial++;
      const i = (round * 7919) % projects.length;
      projects[i] = { ...projects[i]!, lastSerial: serial };
      again.push(await timed(() => tree.writeRoot(projects, serial, true)));
    }
    const sizes = await Promise.all(['simple/index.v1_json', 'simple/index.html'].map(async (k) => (await scratch.head(k)).size));
    const rss = process.memoryUsage().rss / 2 ** 20;
    process.stdout.write(
      `root of ${projects.length} projects (JSON ${fixed(sizes[0]! / 1e6, 1)} MB, HTML ${fixed(sizes[1]! / 1e6, 1)} MB twice), ${new Date().toISOString().slice(0, 10)}, node ${process.version}\n\n` +
        markdownTable(
          ['step', 'wall s', 'CPU s'],
          [
            ['find the tree\'s projects (start, reconcile)', fixed(names.wallMs / 1000, 2), fixed(names.cpuMs / 1000, 2)],
            ['root written whole, nothing rendered yet', fixed(first.wallMs / 1000, 2), fixed(first.cpuMs / 1000, 2)],
            [`root written again, one serial moved (median of ${again.length})`, fixed(median(again.map((t) => t.wallMs)) / 1000, 2), fixed(median(again.map((t) => t.cpuMs)) / 1000, 2)],
          ],
        ) +
        `\n\nRSS ${fixed(rss)} MiB at the end\n`,
    );
  } finally {
    await Promise.all([source.close(), scratch.close()]);
    await rm(scratchDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
