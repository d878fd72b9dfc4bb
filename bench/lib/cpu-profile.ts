/**
 * Reads a V8 `.cpuprofile` (node --cpu-prof) and says where the main thread's
 * time went: busy versus idle, top functions by self time, and inclusive time
 * per area (an npm package, a pyedge source file, node internals).
 */
import { readFile } from 'node:fs/promises';
import { fixed, markdownTable } from './stats.js';

/** One frame of a sampled stack. */
export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

/** A named share of busy time: a sample goes to the first bucket whose `match` accepts its stack (leaf first). */
export interface ProfileBucket {
  readonly name: string;
  readonly match: (stack: readonly CallFrame[]) => boolean;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** The area a frame belongs to: `pkg:<name>`, `pyedge:<src path>`, `node:<module>` or a V8 pseudo-frame. */
function areaOf(frame: CallFrame): string {
  const url = frame.url;
  if (!url) return `(${frame.functionName || 'native'})`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `pkg:${nm[1]}`;
  const src = /dist\/(src\/.+)\.js$/.exec(url);
  if (src) return `pyedge:${src[1]}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  return url.replace(/^file:\/\//, '');
}

function labelOf(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(node_modules|dist)\//, '').replace(/^file:\/\//, '');
  return `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`.trim();
}

/** A markdown summary of one profile (time in ms of main-thread samples). */
export async function summarizeProfile(path: string, top = 15, buckets: readonly ProfileBucket[] = []): Promise<string> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<number, number>();
  const areaInclusive = new Map<string, number>();
  const bucketed = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const us = profile.timeDeltas[i + 1] ?? 0;
    total += us;
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    self.set(id, (self.get(id) ?? 0) + us);
    if (buckets.length > 0) {
      const stack: CallFrame[] = [];
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) stack.push(byId.get(cur)!.callFrame);
      const name = buckets.find((b) => b.match(stack))?.name ?? 'other';
      bucketed.set(name, (bucketed.get(name) ?? 0) + us);
    }
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      if (frame.functionName === '(root)') continue;
      const area = areaOf(frame);
      if (!seen.has(area)) {
        seen.add(area);
        areaInclusive.set(area, (areaInclusive.get(area) ?? 0) + us);
      }
    }
  }
  const busy = total - idle;
  const selfByLabel = new Map<string, number>();
  for (const [id, us] of self) {
    const label = labelOf(byId.get(id)!.callFrame);
    selfByLabel.set(label, (selfByLabel.get(label) ?? 0) + us);
  }
  const pct = (us: number): string => `${fixed((100 * us) / busy, 1)} %`;
  const topSelf = [...selfByLabel].sort((a, b) => b[1] - a[1]).slice(0, top);
  const topAreas = [...areaInclusive].sort((a, b) => b[1] - a[1]).slice(0, top);
  const bucketTable =
    buckets.length === 0
      ? []
      : [
          '',
          'Busy time by phase (each sample counted once, first matching phase):',
          markdownTable(
            ['phase', 'ms', 'share'],
            [...buckets.map((b) => b.name), 'other']
              .filter((name) => bucketed.has(name))
              .map((name) => [name, fixed(bucketed.get(name)! / 1000), pct(bucketed.get(name)!)]),
          ),
        ];
  return [
    `profile ${path}: ${fixed(total / 1000)} ms sampled, main thread busy ${fixed(busy / 1000)} ms (${fixed((100 * busy) / total, 1)} %), idle ${fixed(idle / 1000)} ms`,
    '',
    'Self time (share of busy time):',
    markdownTable(['function', 'self ms', 'share'], topSelf.map(([l, us]) => [l, fixed(us / 1000), pct(us)])),
    '',
    'Inclusive time by area (a sample counts once per area on its stack):',
    markdownTable(['area', 'ms', 'share'], topAreas.map(([a, us]) => [a, fixed(us / 1000), pct(us)])),
    ...bucketTable,
  ].join('\n');
}
