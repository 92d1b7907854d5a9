import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Lane, takeDistinct } from '../../src/services/lane.ts';

// The scheduling the shared paths stand on (src/services/lane.ts): an idle lane runs an item
// alone at once; items arriving meanwhile run as batches, each settled once, none lost, never
// more in flight than allowed, and a second batch beside one in flight only once enough wait.

interface Item {
  readonly n: number;
  readonly resolve: (v: string) => void;
  readonly reject: (e: unknown) => void;
}

void describe('Lane', () => {
  void it('settles every item once, alone or in a batch, within the in-flight limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 40, maxLength: 40 }),
        async (items, maxInFlight, minToOverlap, delays) => {
          let inFlight = 0;
          let peak = 0;
          const batches: number[][] = [];
          const tick = (n: number) => new Promise((r) => setTimeout(r, delays[n % delays.length]));
          const lane = new Lane<Item>({
            maxInFlight,
            minToOverlap,
            take: (q) => q.splice(0, 5),
            run: async (batch) => {
              inFlight += 1;
              peak = Math.max(peak, inFlight);
              batches.push(batch.map((b) => b.n));
              await tick(batch[0]!.n);
              inFlight -= 1;
              for (const b of batch) b.resolve(`batch ${b.n}`);
            },
            fail: (batch, e) => batch.forEach((b) => b.reject(e)),
          });
          const alone = async (n: number) => {
            inFlight += 1;
            peak = Math.max(peak, inFlight);
            await tick(n);
            inFlight -= 1;
            return `alone ${n}`;
          };
          const answers = await Promise.all(
            Array.from({ length: items }, (_, n) =>
              lane.submit(
                () => alone(n),
                (resolve, reject) => ({ n, resolve, reject }),
              ),
            ),
          );
          // The first runs alone; each later one exactly once, alone or in one batch.
          assert.equal(answers[0], 'alone 0');
          const batched = batches.flat().sort((a, b) => a - b);
          assert.equal(new Set(batched).size, batched.length);
          answers.forEach((a, n) => assert.equal(a, batched.includes(n) ? `batch ${n}` : `alone ${n}`));
          assert.ok(peak <= maxInFlight, `peak ${peak} > ${maxInFlight}`);
        },
      ),
      { numRuns: 60 },
    );
  });

  void it('a run that throws rejects its batch, and the lane goes on', async () => {
    let calls = 0;
    const lane = new Lane<Item>({
      maxInFlight: 1,
      minToOverlap: 1,
      take: (q) => q.splice(0, q.length),
      run: () => Promise.reject(new Error(`run ${++calls}`)),
      fail: (batch, e) => batch.forEach((b) => b.reject(e)),
    });
    let release = () => {};
    const first = lane.submit(
      () => new Promise<string>((r) => (release = () => r('alone'))),
      (resolve, reject) => ({ n: 0, resolve, reject }),
    );
    const queued = lane.submit(
      () => Promise.resolve('never'),
      (resolve, reject) => ({ n: 1, resolve, reject }),
    );
    release();
    assert.equal(await first, 'alone');
    await assert.rejects(queued, /run 1/);
    assert.equal(
      await lane.submit(
        () => Promise.resolve('idle again'),
        () => assert.fail(),
      ),
      'idle again',
    );
  });
});

void describe('takeDistinct', () => {
  void it('takes items in order whose identities are new, leaves the rest queued in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { maxLength: 3 }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 8 }),
        (ids, max) => {
          const queue = ids.map((id, n) => ({ n, id }));
          const before = [...queue];
          const batch = takeDistinct(queue, max, (w) => w.id);
          assert.ok(batch.length <= max);
          const seen = batch.flatMap((w) => [...new Set(w.id)]);
          assert.equal(new Set(seen).size, seen.length);
          assert.deepEqual(
            [...batch, ...queue].sort((x, y) => x.n - y.n),
            before,
          );
          assert.deepEqual(
            queue,
            before.filter((w) => !batch.includes(w)),
          );
          if (before.length > 0) assert.equal(batch[0], before[0]);
        },
      ),
    );
  });
});
