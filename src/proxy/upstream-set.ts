/**
 * The upstreams and what the proxy learned across them: the order to try
 * them in (health first, then speed and freshness, then the command line's order), the
 * newest serial seen per project, and which upstream gave it.
 */
import type { Logger } from 'pino';
import type { HealthPolicy } from './proxy-config.js';
import type { RequestKind } from './hedger.js';
import { Upstream } from './upstream.js';

const MAX_PROJECTS = 100_000;

export interface Order {
  readonly upstreams: readonly Upstream[];
  /** Every upstream is down and inside its back-off: the list is a last resort. */
  readonly allResting: boolean;
}

export class UpstreamSet {
  readonly list: readonly Upstream[];
  readonly #serials = new Map<string, { serial: number; upstream: number }>();
  /** Bumped at each state change: the status page reads it. */
  changes = 0;

  constructor(roots: readonly string[], policy: HealthPolicy, logger: Logger) {
    this.list = roots.map((root, i) => new Upstream(i, root, policy, logger, () => this.changes++));
  }

  /** Newest serial known for a project, or undefined. */
  serial(project: string): number | undefined {
    return this.#serials.get(project)?.serial;
  }

  /** Remember a serial an upstream (or the cache, with upstream -1) showed for a project. */
  sawSerial(project: string, serial: number, upstream: number): void {
    const known = this.#serials.get(project);
    if (known && known.serial > serial) return;
    if (known && known.serial === serial && upstream < 0) return;
    this.#serials.delete(project);
    this.#serials.set(project, { serial, upstream });
    if (this.#serials.size > MAX_PROJECTS) this.#serials.delete(this.#serials.keys().next().value!);
  }

  /** The freshest whole-index serial any upstream reported. */
  get newestIndexSerial(): number | null {
    let max: number | null = null;
    for (const u of this.list) if (u.health.indexSerial !== null && (max === null || u.health.indexSerial > max)) max = u.health.indexSerial;
    return max;
  }

  /** Upstreams to try, best first; down ones inside their back-off are left out unless all are. */
  order(kind: RequestKind, project?: string): Order {
    const newest = kind === 'page' ? this.newestIndexSerial : null;
    const fresh = project === undefined ? undefined : this.#serials.get(project)?.upstream;
    const key = (u: Upstream): number[] => [
      u.health.rank(),
      // Just beaten by a hedge: the others first, until it answers again.
      u.health.slowStreak > 0 ? 1 : 0,
      newest !== null && u.health.indexSerial !== null && u.health.indexSerial < newest ? 1 : 0,
      fresh === u.index ? 0 : 1,
      u.index,
    ];
    const sorted = [...this.list].sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
      return 0;
    });
    const awake = sorted.filter((u) => !u.health.resting);
    return awake.length > 0 ? { upstreams: awake, allResting: false } : { upstreams: sorted, allResting: true };
  }
}
