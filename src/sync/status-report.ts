/**
 * `pyedge publish --status`: where a tree is (its state object), where its
 * source is (asked directly when it answers), the lag between them in serials
 * and seconds, and what the publisher last recorded (its status object: the
 * last batch, the last error). Reads only; safe to run beside a publisher.
 */
import { OriginHttp } from './origin-http.js';
import { formatElapsed } from './progress.js';
import type { StaticTree } from './static-tree.js';
import { STATUS_KEY, parsePublisherStatus, type PublisherStatus } from './status.js';
import { STATE_KEY } from './tree-layout.js';
import { parseTreeState, type TreeState } from './tree-state.js';

export interface StatusReport {
  readonly target: string;
  /** The tree's state object; null when there is none (never published) or it is unreadable. */
  readonly state: TreeState | null;
  /** Why `state` is null when there is a state object. */
  readonly stateProblem: string | null;
  /** The publisher's status object, when one was written. */
  readonly status: PublisherStatus | null;
  /** The source asked (from the options, else the state's). */
  readonly source: string | null;
  /** The source's newest serial, asked just now; null when it did not answer (see sourceError). */
  readonly sourceSerial: number | null;
  readonly sourceError: string | null;
  /** Serials the source is ahead of the tree; null when unknown. */
  readonly lagSerials: number | null;
  /** Seconds since the oldest change the tree lacks was made (0 when caught up); null when unknown. */
  readonly lagSeconds: number | null;
}

export interface StatusReportOptions {
  /** The source to ask; default: the one the state records. */
  readonly source?: string | null;
  /** How long to wait for the source. Default 5 s. */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/** The source's newest serial and the time of the first change after `since`. */
async function askSource(source: string, since: number, timeoutMs: number): Promise<{ serial: number; firstTime: string | null }> {
  const http = new OriginHttp(source, { attempts: 1, timeoutMs });
  const answer = await http.get(`/changes?since=${Math.max(0, since)}&limit=1`);
  if (answer.status !== 200) throw new Error(`/changes answered ${answer.status}; is it a pyedge origin?`);
  const doc = JSON.parse(answer.body.toString('utf8')) as { last_serial?: unknown; changes?: { time?: unknown }[] };
  if (typeof doc.last_serial !== 'number') throw new Error('the change feed did not say its last serial');
  const first = Array.isArray(doc.changes) ? doc.changes[0] : undefined;
  return { serial: doc.last_serial, firstTime: typeof first?.time === 'string' ? first.time : null };
}

export async function readStatusReport(tree: StaticTree, options: StatusReportOptions = {}): Promise<StatusReport> {
  const now = options.now ?? Date.now;
  const [stateBytes, statusBytes] = await Promise.all([tree.read(STATE_KEY), tree.read(STATUS_KEY)]);
  let state: TreeState | null = null;
  let stateProblem: string | null = null;
  if (stateBytes !== null) {
    try {
      state = parseTreeState(stateBytes);
    } catch (err) {
      stateProblem = (err as Error).message;
    }
  }
  const status = statusBytes === null ? null : parsePublisherStatus(statusBytes);
  const source = options.source ?? state?.source ?? status?.source ?? null;
  let sourceSerial: number | null = null;
  let sourceError: string | null = null;
  let lagSerials: number | null = null;
  let lagSeconds: number | null = null;
  if (source !== null) {
    const applied = state?.serial ?? -1;
    try {
      const answer = await askSource(source, applied, options.timeoutMs ?? 5000);
      sourceSerial = answer.serial;
      lagSerials = Math.max(0, answer.serial - applied);
      const first = answer.firstTime === null ? NaN : Date.parse(answer.firstTime);
      lagSeconds = lagSerials === 0 ? 0 : Number.isNaN(first) ? null : Math.max(0, (now() - first) / 1000);
    } catch (err) {
      sourceError = err instanceof Error ? err.message : String(err);
    }
  }
  return { target: tree.description, state, stateProblem, status, source, sourceSerial, sourceError, lagSerials, lagSeconds };
}

function ago(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : `${iso}, ${formatElapsed(Math.max(0, now - t))} ago`;
}

/** The report for people: one `label: value` line each. */
export function formatStatusReport(r: StatusReport, now: number = Date.now()): string {
  const lines: [string, string][] = [['tree', r.target]];
  lines.push(['source', r.source ?? 'unknown (give --source)']);
  if (r.state === null) {
    lines.push(['applied serial', r.stateProblem ? `unreadable state object: ${r.stateProblem}` : 'none: nothing was published to this tree yet']);
  } else {
    lines.push(['applied serial', `${r.state.serial} (recorded ${ago(r.state.time, now)})`]);
    const newer = Object.keys(r.state.newer).length;
    const root = r.state.rootSerial === r.state.serial ? `serial ${r.state.rootSerial}` : `serial ${r.state.rootSerial}; ${newer} project(s) have newer pages (refreshed every --root-interval)`;
    lines.push(['root index', root]);
  }
  if (r.sourceSerial !== null) lines.push(['source serial', String(r.sourceSerial)]);
  else if (r.source !== null) {
    const seen = r.status?.sourceSerial != null && r.status.sourceSeen ? `; the publisher last saw ${r.status.sourceSerial} at ${r.status.sourceSeen}` : '';
    lines.push(['source serial', `unreachable (${r.sourceError})${seen}`]);
  }
  if (r.lagSerials !== null) {
    lines.push(['lag', `${r.lagSerials} serial${r.lagSerials === 1 ? '' : 's'}, ${r.lagSeconds === null ? 'unknown' : r.lagSeconds.toFixed(1)} s`]);
  } else if (r.state !== null && r.status?.sourceSerial != null) {
    lines.push(['lag', `unknown; ${Math.max(0, r.status.sourceSerial - r.state.serial)} serial(s) when the publisher last saw the source`]);
  } else lines.push(['lag', 'unknown']);
  const s = r.status;
  if (s === null) lines.push(['publisher', 'no status recorded']);
  else {
    const batch = s.lastBatch ? `last batch ${s.lastBatch.ok ? 'ok' : 'failed'} at ${ago(s.lastBatch.time, now)}, ${s.lastBatch.ms} ms` : 'no batch yet';
    lines.push(['publisher', `${s.watching ? 'watching' : 'one-shot run'}; ${batch}; status written ${ago(s.updated, now)}`]);
    lines.push(['last success', s.lastSuccess ? ago(s.lastSuccess, now) : 'none']);
    const e = s.lastError;
    lines.push(['last error', e ? `${ago(e.time, now)}: ${e.code}: ${e.message}${s.failuresInARow > 0 ? ` (${s.failuresInARow} failure(s) in a row)` : ' (recovered since)'}` : 'none']);
  }
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  return lines.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}\n`).join('');
}
