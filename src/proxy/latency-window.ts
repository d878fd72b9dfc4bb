/** The most recent latencies (a ring of fixed size) and their percentiles. */
export class LatencyWindow {
  readonly #samples: number[] = [];
  readonly #size: number;
  #next = 0;

  constructor(size = 200) {
    this.#size = size;
  }

  add(ms: number): void {
    if (this.#samples.length < this.#size) this.#samples.push(ms);
    else this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#size;
  }

  get count(): number {
    return this.#samples.length;
  }

  /** The p-th percentile (0–1) by nearest rank, or null with no samples. */
  percentile(p: number): number | null {
    if (this.#samples.length === 0) return null;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
    return sorted[rank]!;
  }
}
