/**
 * A writer that changes an origin, in bursts of a given number of changes or
 * until stopped: new projects, new releases and extra files (wheels of tens of
 * KB), yanks and un-yanks, and removals of files, releases and projects
 * through the management API. Its choices come from a seeded generator and it
 * acts alone and in order, so the same seed makes the same changes. Wheels are
 * built ahead in small batches (one Python start each).
 */
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { buildWheels, formUpload, type UploadAnswer, type WheelSpec } from './distributions.js';
import type { SeededRandom } from './seeded-random.js';

interface Release {
  readonly files: string[];
  /** Tags uploaded so far: a removed file's name can never be used again. */
  readonly tags: Set<string>;
  yanked: boolean;
}

interface ProjectModel {
  readonly name: string;
  readonly releases: Map<string, Release>;
  nextVersion: number;
}

type Op =
  | { readonly kind: 'upload'; readonly project: string; readonly version: string; readonly spec: WheelSpec }
  | { readonly kind: 'yank' | 'unyank' | 'remove-release'; readonly project: string; readonly version: string }
  | { readonly kind: 'remove-file'; readonly project: string; readonly filename: string }
  | { readonly kind: 'remove-project'; readonly project: string };

export interface WriterOptions {
  readonly originUrl: string;
  /** An API token of the user who owns what the writer uploads. */
  readonly token: string;
  /** Where wheels are built. */
  readonly workDir: string;
  readonly random: SeededRandom;
  /** Prefix of project names (each run of a test should use its own). */
  readonly prefix: string;
  /** Pause between two changes, in ms (uniform in the range). */
  readonly pauseMs?: readonly [number, number];
  /** Size of a wheel's padding, in bytes (uniform in the range). */
  readonly wheelBytes?: readonly [number, number];
  /** Fewest projects kept alive (removals of whole projects stop there). */
  readonly minProjects?: number;
}

export interface WriterStats {
  uploads: number;
  yanks: number;
  removals: number;
  failures: string[];
}

const TAGS = ['py3-none-any', 'py2.py3-none-any'];
/** Tries of one change whose answer is lost (the connection failed). */
const ATTEMPTS = 3;

/**
 * Sends a change, again when the connection fails before an answer (a busy loopback can reset
 * one); on a second try `doneBefore` tells an answer that means the first one went through.
 */
async function retried(send: () => Promise<UploadAnswer>, doneBefore: (a: UploadAnswer) => boolean, what: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let answer: UploadAnswer;
    try {
      answer = await send();
    } catch (err) {
      if (attempt >= ATTEMPTS) throw err;
      continue;
    }
    if (answer.status === 200 || (attempt > 1 && doneBefore(answer))) return;
    throw new Error(`${what}: HTTP ${answer.status} ${answer.body}`);
  }
}
/** Changes planned (and wheels built) at a time. */
const PLAN_AHEAD = 24;

export class IndexWriter {
  readonly stats: WriterStats = { uploads: 0, yanks: 0, removals: 0, failures: [] };
  readonly #o: WriterOptions;
  readonly #projects = new Map<string, ProjectModel>();
  #nextProject = 0;
  #plan: Op[] = [];
  #wheels = new Map<Op, string>();
  #stopped = false;
  #running: Promise<void> | null = null;
  #batch = 0;

  constructor(options: WriterOptions) {
    this.#o = options;
  }

  /** Makes `count` projects with a release each, at once. */
  async seed(count: number): Promise<void> {
    for (let i = 0; i < count; i++) this.#plan.push(this.#newRelease(this.#newProject()));
    while (this.#plan.length > 0) await this.#step();
  }

  /** Makes `count` changes (a pause before each), unless stopped first. */
  async burst(count: number): Promise<void> {
    if (this.#running !== null) throw new Error('the writer is already running');
    this.#running = this.#loop(count);
    try {
      await this.#running;
    } finally {
      this.#running = null;
    }
  }

  /** Finishes the change under way and makes no more. */
  async stop(): Promise<WriterStats> {
    this.#stopped = true;
    await this.#running;
    return this.stats;
  }

  async #loop(count: number): Promise<void> {
    const [lo, hi] = this.#o.pauseMs ?? [40, 120];
    for (let i = 0; i < count && !this.#stopped; i++) {
      await new Promise((r) => setTimeout(r, this.#o.random.int(lo, hi)));
      await this.#step();
    }
  }

  async #step(): Promise<void> {
    if (this.#plan.length === 0) {
      for (let i = 0; i < PLAN_AHEAD; i++) this.#plan.push(this.#choose());
    }
    const pending = this.#plan.filter((op) => op.kind === 'upload' && !this.#wheels.has(op)) as Extract<Op, { kind: 'upload' }>[];
    if (pending.length > 0) {
      const dir = join(this.#o.workDir, `wheels-${this.#batch++}`);
      await mkdir(dir, { recursive: true });
      const paths = await buildWheels(dir, pending.map((op) => op.spec));
      pending.forEach((op, i) => this.#wheels.set(op, paths[i]!));
    }
    const op = this.#plan.shift()!;
    try {
      await this.#apply(op);
    } catch (err) {
      this.stats.failures.push(`${op.kind} ${JSON.stringify(op)}: ${(err as Error).message}`);
    }
  }

  /** Picks the next change and applies it to the model (the plan runs ahead of the origin). */
  #choose(): Op {
    const r = this.#o.random;
    const live = [...this.#projects.values()];
    const withReleases = live.filter((p) => p.releases.size > 0);
    const roll = r.next();
    if (live.length < (this.#o.minProjects ?? 3) || roll < 0.12) return this.#newRelease(this.#newProject());
    if (roll < 0.55 || withReleases.length === 0) return this.#newRelease(r.pick(live));
    const project = r.pick(withReleases);
    const [version, release] = r.pick([...project.releases]);
    const unused = TAGS.filter((t) => !release.tags.has(t));
    if (roll < 0.65 && unused.length > 0) return this.#upload(project, version, unused[0]!);
    if (roll < 0.75) {
      release.yanked = !release.yanked;
      return { kind: release.yanked ? 'yank' : 'unyank', project: project.name, version };
    }
    if (roll < 0.85 && release.files.length > 0) {
      const filename = release.files.splice(r.int(0, release.files.length - 1), 1)[0]!;
      // A release without files is left alone from now on, whatever the origin keeps of it.
      if (release.files.length === 0) project.releases.delete(version);
      return { kind: 'remove-file', project: project.name, filename };
    }
    if (roll < 0.95 || live.length <= (this.#o.minProjects ?? 3) + 1) {
      project.releases.delete(version);
      return { kind: 'remove-release', project: project.name, version };
    }
    this.#projects.delete(project.name);
    return { kind: 'remove-project', project: project.name };
  }

  #newProject(): ProjectModel {
    const name = `${this.#o.prefix}-${this.#nextProject++}`;
    const p: ProjectModel = { name, releases: new Map(), nextVersion: 1 };
    this.#projects.set(name, p);
    return p;
  }

  #newRelease(project: ProjectModel): Op {
    const version = `${project.nextVersion++}.0`;
    return this.#upload(project, version, TAGS[0]!);
  }

  #upload(project: ProjectModel, version: string, tag: string): Op {
    const r = this.#o.random;
    const [lo, hi] = this.#o.wheelBytes ?? [10_000, 60_000];
    const release = project.releases.get(version) ?? { files: [], tags: new Set<string>(), yanked: false };
    project.releases.set(version, release);
    const spec: WheelSpec = { name: project.name, version, tag, padding: r.int(lo, hi), paddingSeed: r.int(0, 2 ** 30) };
    release.tags.add(tag);
    release.files.push(`${project.name.replace(/[-_.]+/g, '_')}-${version}-${tag}.whl`);
    return { kind: 'upload', project: project.name, version, spec };
  }

  async #apply(op: Op): Promise<void> {
    const { originUrl, token } = this.#o;
    if (op.kind === 'upload') {
      const path = this.#wheels.get(op)!;
      this.#wheels.delete(op);
      // After a lost answer, "already exists" means the first attempt went through.
      await retried(() => formUpload(originUrl, path, { token }), (a) => a.status === 400 && /already exists/.test(a.body), `upload of ${basename(path)}`);
      this.stats.uploads++;
      return;
    }
    const base = `${originUrl}/api/projects/${encodeURIComponent(op.project)}`;
    const [method, url] =
      op.kind === 'yank' || op.kind === 'unyank'
        ? ['POST', `${base}/releases/${encodeURIComponent(op.version)}/${op.kind}`]
        : op.kind === 'remove-release'
          ? ['DELETE', `${base}/releases/${encodeURIComponent(op.version)}`]
          : op.kind === 'remove-file'
            ? ['DELETE', `${base}/files/${encodeURIComponent(op.filename)}`]
            : ['DELETE', base];
    const request = async (): Promise<UploadAnswer> => {
      const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, statusText: res.statusText, body: await res.text() };
    };
    // After a lost answer, a removal already done answers 404.
    await retried(request, (a) => a.status === 404 && method === 'DELETE', `${method} ${url}`);
    if (op.kind === 'yank' || op.kind === 'unyank') this.stats.yanks++;
    else this.stats.removals++;
  }

}
