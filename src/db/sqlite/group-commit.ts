/**
 * Group commit: work items that arrive while the event loop is busy are
 * applied together, in one transaction with one flush to disk, instead of one
 * transaction (and one fsync) each. Each submitter is answered only once the
 * commit that holds its item is done; the group's runner decides each item's
 * fate on its own, so one refused item does not fail the others.
 */

/** What happened to one item of a group. */
export type Settled<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

/** Applies a group of items and commits them; answers each in order, or throws to fail the whole group. */
export type GroupRunner<I, R> = (items: readonly I[]) => Promise<readonly Settled<R>[]>;

interface Pending<I, R> {
  readonly item: I;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

/** Most items in one group: bounds how long one commit holds the event loop. */
const DEFAULT_MAX_GROUP = 64;

export class GroupCommit<I, R> {
  readonly #run: GroupRunner<I, R>;
  readonly #maxGroup: number;
  #queue: Pending<I, R>[] = [];
  #scheduled = false;
  #running: Promise<void> | null = null;
  #groups = 0;

  constructor(run: GroupRunner<I, R>, maxGroup = DEFAULT_MAX_GROUP) {
    this.#run = run;
    this.#maxGroup = maxGroup;
  }

  /** How many groups have been run so far. */
  get groups(): number {
    return this.#groups;
  }

  /** Queue `item`; resolves with its result once the group holding it committed. */
  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once every item submitted so far has been answered. */
  async idle(): Promise<void> {
    while (this.#running !== null || this.#queue.length > 0) {
      if (this.#running !== null) await this.#running;
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#running !== null) return;
    this.#scheduled = true;
    // After the current turn of the event loop, so that everything submitted in it joins one group.
    setImmediate(() => {
      this.#scheduled = false;
      this.#running = this.#flush().finally(() => {
        this.#running = null;
        if (this.#queue.length > 0) this.#schedule();
      });
    });
  }

  async #flush(): Promise<void> {
    const group = this.#queue.splice(0, this.#maxGroup);
    if (group.length === 0) return;
    this.#groups++;
    let results: readonly Settled<R>[];
    try {
      results = await this.#run(group.map((p) => p.item));
    } catch (err) {
      for (const p of group) p.reject(err);
      return;
    }
    group.forEach((p, i) => {
      const r = results[i];
      if (r === undefined) p.reject(new Error('group commit: the runner gave no result for an item'));
      else if (r.ok) p.resolve(r.value);
      else p.reject(r.error);
    });
  }
}
