/**
 * A small seeded pseudo-random generator (mulberry32) for tests that make
 * random choices: the seed is logged, and the same seed gives the same choices,
 * so a failure can be run again.
 */

export class SeededRandom {
  readonly seed: number;
  #state: number;

  /** `seed` defaults to `PYEDGE_TEST_SEED` when set, else to a fresh random one. */
  constructor(seed?: number) {
    const fromEnv = Number(process.env['PYEDGE_TEST_SEED']);
    this.seed = (seed ?? (Number.isInteger(fromEnv) && process.env['PYEDGE_TEST_SEED'] ? fromEnv : Math.floor(Math.random() * 2 ** 32))) >>> 0;
    this.#state = this.seed;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A new generator seeded from this one's next draw: independent streams that stay reproducible. */
  fork(): SeededRandom {
    return new SeededRandom(Math.floor(this.next() * 2 ** 32));
  }

  /** A generator for one named part of a test, from the seed alone: the same whichever parts run. */
  derive(label: string): SeededRandom {
    let h = 0x811c9dc5;
    for (const ch of label) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    return new SeededRandom((this.seed ^ h) >>> 0);
  }
}
