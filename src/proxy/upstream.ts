/** One upstream index: where it is, how healthy it is, and what it turned out to serve. */
import type { Logger } from 'pino';
import type { HealthPolicy } from './proxy-config.js';
import { UpstreamHealth } from './upstream-health.js';

export class Upstream {
  /** Position in the command line: ties in health go to the earlier one. */
  readonly index: number;
  /** The index root, ending in `/simple/`. */
  readonly root: string;
  /** What `/simple/` hangs off: the root of `/packages/`, `/serverkey`, `/_health`. */
  readonly site: string;
  readonly health: UpstreamHealth;
  /** Whether `/_health` exists (null: not asked yet). */
  hasHealthRoute: boolean | null = null;
  /** Where this upstream keeps page signatures, once found: PEP 381's `/serversig/<name>` or the tree's `simple/<name>/serversig`. */
  signatureLayout: 'pep381' | 'tree' | null = null;

  constructor(index: number, root: string, policy: HealthPolicy, logger: Logger, onChange?: () => void) {
    this.index = index;
    this.root = root;
    this.site = root.replace(/simple\/$/, '');
    this.health = new UpstreamHealth(policy, (change) => {
      const fields = { upstream: root, from: change.from, to: change.to, reason: change.reason };
      if (change.to === 'healthy') logger.info(fields, 'upstream state changed');
      else logger.warn(fields, 'upstream state changed');
      onChange?.();
    });
  }

  /** The URL of `path` (relative to the site root, no leading slash) on this upstream. */
  siteUrl(path: string): string {
    return this.site + path;
  }

  /** `url` as a path under this upstream's site, or null when it points elsewhere. */
  relativePath(url: string): string | null {
    return url.startsWith(this.site) ? url.slice(this.site.length) : null;
  }
}
