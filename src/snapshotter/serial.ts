// Two small ways of making async work wait its turn: a Mutex (one at a time) and KeyedLocks (one
// at a time per key, different keys in parallel).

export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work, work);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

export class KeyedLocks {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `work` once every key is free; keys are taken in sorted order, so two callers cannot deadlock. */
  async run<T>(keys: string[], work: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const releases: Array<() => void> = [];
    try {
      for (const key of sorted) {
        const before = this.#tails.get(key) ?? Promise.resolve();
        let release!: () => void;
        const mine = new Promise<void>((r) => (release = r));
        const tail = before.then(() => mine);
        this.#tails.set(key, tail);
        releases.push(() => {
          release();
          if (this.#tails.get(key) === tail) this.#tails.delete(key);
        });
        await before;
      }
      return await work();
    } finally {
      for (const release of releases) release();
    }
  }
}
