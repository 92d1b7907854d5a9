// Reliability (issue 7): random operations at once keep every invariant. For 2–3 members, rounds
// of 2–12 operations sent together (purchases, alone or in batches, purchase voids, redemptions
// captured or held, captures, releases, reversals, transfers, runs of the jobs: release-holds,
// expire, mature, tiers; settlement closes; some sent twice at once under one key), the clock
// moving between rounds (holds time out after 30 minutes). Whatever order the service runs a
// round in, and whichever of its shared transactions (single events, redemptions, balance reads)
// take them together, after each round: an independent model of each member's available and held
// points per program, fed only by what each answer says moved, equals the API's balances; no
// request is a 5xx; a request sent twice took effect once; nothing is below zero but where a void
// recorded a negative balance; verify is ok (settlement statements and flows included). On
// PostgreSQL with a pool of 20 the rounds run in parallel transactions; on PGlite they interleave
// at every await on its one connection. PROPERTY_RUNS overrides the run count.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import * as fc from 'fast-check';
import { ManualClock } from '../../src/clock.ts';
import { done, LedgerOps, opArb, uid, type Op } from '../helpers/ledger-ops.ts';
import { applyDemoConfig, createTestService, isPostgres, type TestService } from '../helpers/store.ts';

const clock = new ManualClock('2026-06-10T00:00:00.000Z');
let t: TestService;

const roundsArb = (n: number) =>
  fc.array(
    fc.record({
      ops: fc.array(opArb(n, { voids: true, twice: true, batchAndJobs: true, advance: false }), {
        minLength: 2,
        maxLength: 12,
      }),
      // Often past the holds' 30-minute timeout, so that the job has some to release.
      minutes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 31, max: 60 })),
    }),
    { minLength: 1, maxLength: 5 },
  );

void describe('concurrent operations property: any interleaving keeps every invariant', () => {
  before(async () => {
    t = await createTestService({ clock, poolSize: 20 });
    await applyDemoConfig(t.app);
  });
  after(async () => {
    await t?.close();
  });

  void it(`model balances equal API balances after every round (${isPostgres() ? 'parallel' : 'interleaved'})`, async (tc) => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 3 }).chain((n) => fc.tuple(fc.constant(n), roundsArb(n))),
        async ([n, rounds]) => {
          // The clock only moves forward, across runs too: settlement closes up to now.
          const run = new LedgerOps(
            t,
            clock,
            Array.from({ length: n }, () => uid('mbr_conc')),
          );
          await run.seed();
          for (const round of rounds) {
            await Promise.all(round.ops.map((op: Op) => run.run(op)));
            await run.settleExpiredHolds();
            await run.check();
            clock.advance(round.minutes * 60_000);
          }
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 15) },
    );
    tc.diagnostic(JSON.stringify(Object.fromEntries(done)));
    for (const k of ['buy', 'batch', 'void', 'redeem', 'hold', 'transfer', 'release-holds', 'close'])
      assert.ok((done.get(k) ?? 0) > 0, `no ${k} took effect: ${JSON.stringify(Object.fromEntries(done))}`);
  });
});
