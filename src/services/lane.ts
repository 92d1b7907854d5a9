// A lane for work that is cheaper together than one by one (statements and commits carry a fixed
// cost each; see docs/performance.md). When the lane is idle, a caller runs its item alone at
// once, so a quiet service adds no delay. While something is in flight, items queue; when it
// ends, the queue runs as one batch. A second batch starts beside one in flight only once enough
// items wait, so that under load batches stay large rather than many and small.

export interface LaneOptions<W> {
  /** Batches (and lone items) in flight at once. */
  readonly maxInFlight: number;
  /** A batch starts beside one in flight only once this many items wait. */
  readonly minToOverlap: number;
  /** Removes the next batch from the queue (at least one item), leaving the rest in order. */
  readonly take: (queue: W[]) => W[];
  /** Runs a batch and settles every item in it. */
  readonly run: (batch: W[]) => Promise<void>;
  /** Settles the items of a batch whose run threw (items already settled ignore it). */
  readonly fail: (batch: W[], e: unknown) => void;
}

export class Lane<W> {
  #running = 0;
  readonly #queue: W[] = [];

  constructor(private readonly opts: LaneOptions<W>) {}

  /**
   * Whether the caller may run its item alone now; if so it must call `done()` when it ends.
   * Otherwise it should `enqueue` the item.
   */
  tryAlone(): boolean {
    if (this.#running > 0 || this.#queue.length > 0) return false;
    this.#running += 1;
    return true;
  }

  done(): void {
    this.#running -= 1;
    this.#drain();
  }

  enqueue(item: W): void {
    this.#queue.push(item);
    this.#drain();
  }

  #drain(): void {
    const { maxInFlight, minToOverlap } = this.opts;
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
        .finally(() => this.done());
    }
  }
}
