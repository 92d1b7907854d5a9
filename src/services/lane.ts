// A lane for work that is cheaper together than one by one (statements and commits carry a fixed
// cost each; see docs/performance.md). When the lane is idle, a caller runs its item alone at
// once, so a quiet service adds no delay. While something is in flight, items queue; when it
// ends, the queue runs as one batch. A second batch starts beside one in flight only once enough
// items wait, so that under load batches stay large rather than many and small.

export interface LaneOptions<W> {
  /** Batches (and lone items) in flight at once; 2 by default. */
  readonly maxInFlight?: number;
  /** A batch starts beside one in flight only once this many items wait; 8 by default. */
  readonly minToOverlap?: number;
  /** Removes the next batch from the queue (at least one item), leaving the rest in order. */
  readonly take: (queue: W[]) => W[];
  /** Runs a batch and settles every item in it. */
  readonly run: (batch: W[]) => Promise<void>;
  /** Settles the items of a batch whose run threw (items already settled ignore it). */
  readonly fail: (batch: W[], e: unknown) => void;
}

/**
 * Removes from the queue, in order and up to `max`, the items none of whose identities (`ids`:
 * key, member …) an item taken before them has; the others stay queued, in order.
 */
export function takeDistinct<W>(queue: W[], max: number, ids: (w: W) => readonly string[]): W[] {
  const seen = new Set<string>();
  const batch: W[] = [];
  const rest: W[] = [];
  for (const w of queue) {
    const mine = ids(w);
    if (batch.length >= max || mine.some((id) => seen.has(id))) {
      rest.push(w);
      continue;
    }
    for (const id of mine) seen.add(id);
    batch.push(w);
  }
  queue.splice(0, queue.length, ...rest);
  return batch;
}

/** Settles every item of a batch with the error its run threw (settled ones ignore it). */
export const rejectAll = (batch: readonly { reject: (e: unknown) => void }[], e: unknown): void => {
  for (const w of batch) w.reject(e);
};

export class Lane<W> {
  #running = 0;
  readonly #queue: W[] = [];

  constructor(private readonly opts: LaneOptions<W>) {}

  /**
   * `alone()` at once when the lane is idle; else the item `toItem` makes, queued, settled by the
   * batch that takes it.
   */
  async submit<T>(
    alone: () => Promise<T>,
    toItem: (resolve: (value: T) => void, reject: (e: unknown) => void) => W,
  ): Promise<T> {
    if (this.#running === 0 && this.#queue.length === 0) {
      this.#running += 1;
      try {
        return await alone();
      } finally {
        this.#done();
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push(toItem(resolve, reject));
      this.#drain();
    });
  }

  #done(): void {
    this.#running -= 1;
    this.#drain();
  }

  #drain(): void {
    // Measured on single-event accrual with 16 clients (docs/performance.md): one in flight
    // 434–446 events/s; a second from 4 waiting 452/s, from 16 441–470/s, from 8 533–540/s.
    const { maxInFlight = 2, minToOverlap = 8 } = this.opts;
    while (
      this.#queue.length > 0 &&
      (this.#running === 0 || (this.#running < maxInFlight && this.#queue.length >= minToOverlap))
    ) {
      const batch = this.opts.take(this.#queue);
      if (batch.length === 0) return;
      this.#running += 1;
      void this.opts
        .run(batch)
        .catch((e: unknown) => this.opts.fail(batch, e))
        .finally(() => this.#done());
    }
  }
}
