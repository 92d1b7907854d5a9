// Property (issue 4, "Must show"): random interleavings of accruals, redemptions (single-program
// and group, captured or held), captures (whole and partial), releases, hold timeouts, reversals
// and transfers for 2–3 members keep every invariant: GET /v1/ledger/verify is ok, no member
// account goes below zero, no request is a 5xx, and an independent model of each member's
// available and held points per program, fed only by what each response says moved, equals the
// API's balances. PGlite memory:// (or PostgreSQL with DATABASE_URL); one service, fresh members
// per run.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import * as fc from 'fast-check';
import { ManualClock } from '../../src/clock.ts';
import { done, LedgerOps, opArb, uid } from '../helpers/ledger-ops.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

const NOW = '2026-06-10T00:00:00.000Z';
const clock = new ManualClock(NOW);
let t: TestService;

void describe('redemption property: random interleavings keep every invariant', () => {
  before(async () => {
    t = await createTestService({ clock });
    await applyDemoConfig(t.app);
  });
  after(async () => {
    await t?.close();
  });

  void it('model balances equal API balances and verify is ok after every run', async (tc) => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 2, max: 3 })
          .chain((n) => fc.tuple(fc.constant(n), fc.array(opArb(n), { minLength: 5, maxLength: 30 }))),
        async ([n, ops]) => {
          clock.set(NOW);
          const run = new LedgerOps(
            t,
            clock,
            Array.from({ length: n }, () => uid('mbr_prop')),
          );
          await run.seed();
          for (const op of ops) await run.run(op);
          await run.check();
        },
      ),
      { numRuns: 10 },
    );
    tc.diagnostic(JSON.stringify(Object.fromEntries(done)));
    assert.ok(
      (done.get('redeem') ?? 0) + (done.get('hold') ?? 0) > 0,
      JSON.stringify(Object.fromEntries(done)),
    );
  });
});
