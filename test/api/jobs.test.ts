// The lifecycle jobs through POST /v1/jobs/{name}/run (issue 5, "Must show"): every expiry
// policy at its boundary (the instant before expires_at and at it), inactivity extension,
// per-tier expiry, expiry after a partial redemption, mature at available_at, idempotence
// (the second run changes nothing), tier upgrade and downgrade across the window boundary, and
// on PostgreSQL two concurrent expire runs expiring each lot once.
//
// One service; each test applies the configuration variant it needs (lots keep the expiry they
// were given at accrual, so later variants do not change earlier lots) and uses its own members.
// Job counts are global (every member), so assertions read the test's own members.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import type { Config, ExpiryConfig } from '../../src/domain/config/schema.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { applyDemoConfig, isPostgres } from '../helpers/store.ts';
import { Api, DAY_MS, HOUR_MS, shirt, uid, type Json } from './lifecycle-helpers.ts';

const NOW = '2026-03-10T12:00:00.000Z';
const clock = new ManualClock(NOW);
const api = Api.forTests(clock);

async function variant(mutate: (doc: Config) => void): Promise<void> {
  const doc = demoConfigDoc();
  mutate(doc);
  await applyDemoConfig(api.t.app, doc);
}
const program = (doc: Config, id: string) => doc.programs.find((p) => p.id === id)!;
const summitExpiry = (expiry: ExpiryConfig) =>
  variant((doc) => (program(doc, 'summit-miles').expiry = expiry));
const ms = (iso: string, delta: number) => new Date(Date.parse(iso) + delta).toISOString();

async function available(member_id: string, program_id: string): Promise<number> {
  return (await api.balances(member_id))[program_id]?.available ?? 0;
}

/** A £30 purchase at summit: summit-miles 60 (and acme-points 3). Returns the summit accrual. */
async function summitPurchase(member_id: string): Promise<Json> {
  const out = await api.purchase(member_id, 'store_lon_001', [shirt(3000)]);
  return out.accruals.find((a: Json) => a.program_id === 'summit-miles');
}

/** Runs expire just before and at `expires_at`, checking the member's points survive the first. */
async function expiresExactlyAt(
  member_id: string,
  program_id: string,
  expires_at: string,
  points: number,
): Promise<void> {
  await api.runJob('expire', ms(expires_at, -1));
  assert.equal(
    await available(member_id, program_id),
    points,
    `${program_id} still spendable 1 ms before ${expires_at}`,
  );
  const run = await api.runJob('expire', expires_at);
  assert.ok(run.lots_expired >= 1);
  assert.equal(await available(member_id, program_id), 0, `${program_id} expired at ${expires_at}`);
}

void describe('expire: policies at their boundaries', () => {
  void it('rolling: days after the award', async () => {
    clock.set(NOW);
    await summitExpiry({ kind: 'rolling', days: 30 });
    const m = uid('mbr_roll');
    const a = await summitPurchase(m);
    const awarded = ms(NOW, -60_000);
    assert.equal(a.expires_at, ms(awarded, 30 * DAY_MS));
    await expiresExactlyAt(m, 'summit-miles', a.expires_at, 60);
    assert.equal(await available(m, 'acme-points'), 3, 'the default program’s lot keeps its own policy');
  });

  void it('end_of_period: the first instant of the period after award + after_days', async () => {
    clock.set(NOW);
    await summitExpiry({ kind: 'end_of_period', period: 'month', after_days: 0 });
    const m = uid('mbr_eop');
    const a = await summitPurchase(m);
    assert.equal(a.expires_at, '2026-04-01T00:00:00.000Z');
    await expiresExactlyAt(m, 'summit-miles', a.expires_at, 60);

    await summitExpiry({ kind: 'end_of_period', period: 'quarter', after_days: 30 });
    const q = await summitPurchase(uid('mbr_eop'));
    assert.equal(q.expires_at, '2026-07-01T00:00:00.000Z'); // 2026-04-09 is in Q2
    await summitExpiry({ kind: 'end_of_period', period: 'year', after_days: 365 });
    const y = await summitPurchase(uid('mbr_eop'));
    assert.equal(y.expires_at, '2028-01-01T00:00:00.000Z');
  });

  void it('inactivity: days after the last earning or spending, which extends every open lot', async () => {
    clock.set(NOW);
    await summitExpiry({ kind: 'inactivity', days: 30 });
    const m = uid('mbr_inact');
    const first = await summitPurchase(m);
    assert.equal(first.expires_at, ms(NOW, 30 * DAY_MS - 60_000));
    // 20 days later the member earns again: both lots now expire 30 days after that.
    clock.set(ms(NOW, 20 * DAY_MS));
    const second = await summitPurchase(m);
    const extended = ms(NOW, 50 * DAY_MS - 60_000);
    assert.equal(second.expires_at, extended);
    await api.runJob('expire', first.expires_at);
    assert.equal(
      await available(m, 'summit-miles'),
      120,
      'the first lot was extended by the second purchase',
    );
    // Spending is activity too: 10 days later a redemption pushes everything out again.
    clock.set(ms(NOW, 30 * DAY_MS));
    await api.redeem({ member_id: m, brand_id: 'summit', program_id: 'summit-miles', points: 20 });
    const afterSpend = ms(NOW, 60 * DAY_MS);
    await api.runJob('expire', extended);
    assert.equal(await available(m, 'summit-miles'), 100);
    clock.set(NOW);
    await expiresExactlyAt(m, 'summit-miles', afterSpend, 100);
  });

  void it('per-tier expiry_days replaces the program policy for what a tier member earns, from the first purchase', async () => {
    clock.set(NOW);
    await variant((doc) => {
      program(doc, 'northwind-stars').tiers = [
        { id: 'silver', expiry_days: 10 },
        {
          id: 'gold',
          qualify: { metric: 'spend_minor', at_least: 50000, window_days: 365 },
          expiry_days: 400,
        },
      ];
    });
    const m = uid('mbr_tierexp');
    const stars = async () =>
      (await api.purchase(m, 'store_atl_012', [shirt(2000)])).accruals.find(
        (a: Json) => a.program_id === 'northwind-stars',
      );
    // The first purchase enrolls the member in the base tier, and earns as a silver member.
    const p1 = await stars();
    assert.equal(p1.tier, 'silver');
    assert.equal(p1.expires_at, ms(NOW, 10 * DAY_MS - 60_000), 'silver: 10 days');
    clock.set(ms(NOW, DAY_MS));
    const p2 = await stars();
    assert.equal(p2.tier, 'silver');
    assert.equal(p2.expires_at, ms(NOW, 11 * DAY_MS - 60_000), 'silver: 10 days');
    // A purchase big enough for gold earns at the tier held at its time (silver), and the next at gold.
    const p3 = (await api.purchase(m, 'store_atl_012', [shirt(50000)])).accruals.find(
      (a: Json) => a.program_id === 'northwind-stars',
    );
    assert.equal(p3.expires_at, ms(NOW, 11 * DAY_MS - 60_000), 'earned at silver');
    const p4 = await stars();
    assert.equal(p4.tier, 'gold');
    assert.equal(p4.expires_at, ms(NOW, 401 * DAY_MS - 60_000), 'gold: 400 days');
    clock.set(NOW);
    await api.runJob('expire', ms(p1.expires_at, -1));
    // 10 + 10 + 250 at silver, 12 at gold (its 1.2× rule).
    assert.equal(await available(m, 'northwind-stars'), 10 + 10 + 250 + 12);
    await api.runJob('expire', p1.expires_at);
    assert.equal(await available(m, 'northwind-stars'), 10 + 250 + 12, 'the first silver lot expired');
    await api.runJob('expire', p2.expires_at);
    assert.equal(await available(m, 'northwind-stars'), 12, 'the silver lots expired, the gold one is left');
  });

  void it('never: nothing expires', async () => {
    clock.set(NOW);
    await summitExpiry({ kind: 'never' });
    const m = uid('mbr_never');
    const a = await summitPurchase(m);
    assert.equal(a.expires_at, null);
    await api.runJob('expire', ms(NOW, 50 * 365 * DAY_MS));
    assert.equal(await available(m, 'summit-miles'), 60);
  });
});

void describe('expire: what is left of a lot', () => {
  void it('expires only the remainder after a partial redemption, to breakage of the issuing brand', async () => {
    clock.set(NOW);
    await summitExpiry({ kind: 'rolling', days: 30 });
    const m = uid('mbr_partial');
    const a = await summitPurchase(m);
    await api.redeem({ member_id: m, brand_id: 'northwind', program_id: 'summit-miles', points: 25 });
    await expiresExactlyAt(m, 'summit-miles', a.expires_at, 35);
    const activity = await api.get(`/v1/members/${m}/activity`);
    const expiry = activity.data.find((e: Json) => e.kind === 'expiry');
    assert.deepEqual(
      expiry.lot_effects.map((l: Json) => [l.kind, l.program_id, l.issuing_brand_id, l.points]),
      [['expire', 'summit-miles', 'summit', 35]],
    );
    assert.deepEqual(expiry.points, [
      { program_id: 'summit-miles', points: -35, available: -35, pending: 0, held: 0 },
    ]);
  });

  void it('leaves held points alone; released before expiry they return, released after it they expire at once', async () => {
    clock.set(NOW);
    await summitExpiry({ kind: 'rolling', days: 30 });
    for (const releaseAfterExpiry of [false, true]) {
      clock.set(NOW);
      const m = uid('mbr_held');
      const a = await summitPurchase(m);
      const hold = await api.redeem({
        member_id: m,
        brand_id: 'summit',
        program_id: 'summit-miles',
        points: 15,
        capture: false,
      });
      await api.runJob('expire', a.expires_at);
      let b = (await api.balances(m))['summit-miles']!;
      assert.deepEqual([b.available, b.held], [0, 15], 'the held part survives the run');
      // The release itself happens before or after the lot's expires_at (by the clock).
      clock.set(releaseAfterExpiry ? ms(a.expires_at, HOUR_MS) : ms(a.expires_at, -HOUR_MS));
      await api.post(`/v1/redemptions/${hold.redemption_id}/release`, {}, 200);
      b = (await api.balances(m))['summit-miles']!;
      assert.deepEqual(
        [b.available, b.held],
        [releaseAfterExpiry ? 0 : 15, 0],
        `released ${releaseAfterExpiry ? 'after' : 'before'} expiry`,
      );
      await api.runJob('expire', ms(a.expires_at, 2 * HOUR_MS));
      assert.equal(await available(m, 'summit-miles'), 0, 'gone once its expiry has passed');
    }
    clock.set(NOW);
  });
});

void describe('mature and idempotence', () => {
  void it('mature makes pending points available exactly at available_at, once', async () => {
    clock.set(NOW);
    await variant((doc) => (program(doc, 'northwind-stars').pending_days = 14));
    const m = uid('mbr_mature');
    const a = (await api.purchase(m, 'store_atl_012', [shirt(10000)])).accruals.find(
      (x: Json) => x.program_id === 'northwind-stars',
    );
    assert.equal(a.status, 'pending');
    assert.equal(a.available_at, ms(NOW, 14 * DAY_MS - 60_000));
    await api.runJob('mature', ms(a.available_at, -1));
    let b = (await api.balances(m))['northwind-stars']!;
    assert.deepEqual([b.pending, b.available], [50, 0]);
    assert.deepEqual(b.pending_lots, [{ points: 50, available_at: a.available_at }]);
    const first = await api.runJob('mature', a.available_at);
    assert.ok(first.lots_matured >= 1);
    b = (await api.balances(m))['northwind-stars']!;
    assert.deepEqual([b.pending, b.available], [0, 50]);
    const second = await api.runJob('mature', a.available_at);
    assert.equal(second.lots_matured, 0);
    assert.equal((await api.balances(m))['northwind-stars']!.available, 50);
  });

  void it('a second run of each job as of the same instant changes nothing', async () => {
    clock.set(NOW);
    await summitExpiry({ kind: 'rolling', days: 30 });
    const m = uid('mbr_idem');
    const a = await summitPurchase(m);
    await api.redeem({
      member_id: m,
      brand_id: 'summit',
      program_id: 'summit-miles',
      points: 5,
      capture: false,
    });
    const as_of = ms(a.expires_at, DAY_MS);
    const firsts: Record<string, Json> = {};
    for (const job of ['release-holds', 'mature', 'expire', 'tiers'])
      firsts[job] = await api.runJob(job, as_of);
    assert.ok(firsts['release-holds']!.holds_released >= 1);
    assert.ok(firsts.expire!.lots_expired >= 1);
    const entriesBefore = (await api.get(`/v1/members/${m}/activity?limit=500`)).data.length;
    const balancesBefore = await api.balances(m);
    const seconds: Record<string, Json> = {};
    for (const job of ['release-holds', 'mature', 'expire', 'tiers'])
      seconds[job] = await api.runJob(job, as_of);
    assert.equal(seconds['release-holds']!.holds_released, 0);
    assert.equal(seconds.mature!.lots_matured, 0);
    assert.equal(seconds.expire!.lots_expired, 0);
    assert.equal(seconds.expire!.points_expired, 0);
    assert.equal(seconds.tiers!.downgraded + seconds.tiers!.upgraded, 0);
    assert.equal((await api.get(`/v1/members/${m}/activity?limit=500`)).data.length, entriesBefore);
    assert.deepEqual(await api.balances(m), balancesBefore);
    const v = await api.verify();
    assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c: Json) => !c.ok)));
  });
});

void describe('instants that do not exist', () => {
  // Date.parse reads 2026-02-30 as 2 March: a job would run, or a balance answer, as of a day
  // nobody asked for.
  void it('are refused in a job run and in a balance read, naming the field', async () => {
    const run = await api.t.app.inject({
      method: 'POST',
      url: '/v1/jobs/expire/run',
      headers: api.t.adminHeaders,
      payload: { as_of: '2026-02-30T00:00:00Z' },
    });
    assert.equal(run.statusCode, 400, run.body);
    assert.match(run.json().error.details.field, /as_of/);
    const read = await api.t.app.inject({
      method: 'GET',
      url: `/v1/members/${uid('mbr_ts')}/balances?as_of=2026-11-31T00:00:00Z`,
      headers: api.t.adminHeaders,
    });
    assert.equal(read.statusCode, 400, read.body);
    assert.match(read.json().error.details.field, /as_of/);
  });
});

void describe('tiers across the qualification window', () => {
  const T0 = '2026-03-10T11:59:00.000Z'; // the purchases' transaction time (1 min before NOW)

  void it('upgrades at once when the window holds enough, and not when the older spend has left it', async () => {
    await applyDemoConfig(api.t.app);
    clock.set(NOW);
    const inside = uid('mbr_up');
    const outside = uid('mbr_up');
    await api.purchase(inside, 'store_atl_012', [shirt(30000)]);
    await api.purchase(outside, 'store_atl_012', [shirt(30000)]);
    clock.set(ms(NOW, 364 * DAY_MS));
    const a = await api.purchase(inside, 'store_atl_012', [shirt(25000)]);
    assert.equal(a.accruals.find((x: Json) => x.program_id === 'northwind-stars').tier, 'gold');
    clock.set(ms(NOW, 366 * DAY_MS));
    const b = await api.purchase(outside, 'store_atl_012', [shirt(25000)]);
    assert.equal(b.accruals.find((x: Json) => x.program_id === 'northwind-stars').tier, 'silver');
    clock.set(NOW);
  });

  void it('downgrades by one tier when the window ends, not an instant before, and only once', async () => {
    clock.set(NOW);
    const m = uid('mbr_down');
    await api.purchase(m, 'store_atl_012', [shirt(60000)]);
    const tier = async () =>
      (await api.get(`/v1/members/${m}/tiers`)).programs.find(
        (p: Json) => p.program_id === 'northwind-stars',
      );
    assert.equal((await tier()).tier, 'gold');
    // The window is the 365 days ending at as_of (inclusive): T0 is in it until T0 + 365 days.
    await api.runJob('tiers', ms(T0, 365 * DAY_MS - 1));
    assert.equal((await tier()).tier, 'gold');
    await api.runJob('tiers', ms(T0, 365 * DAY_MS));
    const down = await tier();
    assert.equal(down.tier, 'silver');
    assert.deepEqual(
      down.history.map((h: Json) => [h.tier, h.reason, h.from_at]),
      [
        ['silver', 'downgrade', ms(T0, 365 * DAY_MS)],
        ['gold', 'upgrade', T0],
      ],
    );
    const later = (await api.get(`/v1/members/${m}/tiers?as_of=${ms(T0, 365 * DAY_MS)}`)).programs[0];
    assert.deepEqual(
      later.next_tier.remaining,
      { amount_minor: 50000, currency: 'USD' },
      'nothing in the window any more',
    );
    await api.runJob('tiers', ms(T0, 365 * DAY_MS));
    await api.runJob('tiers', ms(T0, 400 * DAY_MS));
    assert.equal((await tier()).history.length, 2, 'silver is the floor: nothing more to do');
  });
});

void describe('concurrent job runs (PostgreSQL)', () => {
  void it(
    'two concurrent expire runs expire each lot exactly once',
    { skip: !isPostgres() && 'PGlite has one connection: runs are serialized' },
    async () => {
      clock.set(NOW);
      await summitExpiry({ kind: 'rolling', days: 30 });
      const members = Array.from({ length: 40 }, () => uid('mbr_conc'));
      let expires_at = '';
      for (const m of members) expires_at = (await summitPurchase(m)).expires_at;
      const as_of = ms(expires_at, 1000);
      const runs = await Promise.all([api.runJob('expire', as_of), api.runJob('expire', as_of)]);
      const third = await api.runJob('expire', as_of);
      const expired = runs.reduce((s, r) => s + r.lots_expired, 0) + third.lots_expired;
      const skipped = runs.reduce((s, r) => s + r.skipped_members, 0);
      assert.ok(expired >= members.length, `${expired} lots expired in all`);
      if (skipped === 0) assert.equal(third.lots_expired, 0);
      for (const m of members) {
        assert.equal(await available(m, 'summit-miles'), 0);
        const activity = await api.get(`/v1/members/${m}/activity`);
        const expiries = activity.data.filter((e: Json) => e.kind === 'expiry');
        const summitEffects = expiries.flatMap((e: Json) =>
          e.lot_effects.filter((l: Json) => l.program_id === 'summit-miles'),
        );
        assert.deepEqual(
          summitEffects.map((l: Json) => [l.kind, l.points]),
          [['expire', 60]],
          `${m}: one expiry of its lot`,
        );
      }
      const v = await api.verify();
      assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c: Json) => !c.ok)));
    },
  );
});

void describe('a job run without a body', () => {
  // The body is optional ({"as_of"} defaults to now): a POST with no body at all runs as of now,
  // as `{}` does, instead of a 400 "body: must be object".
  void it('runs as of now', async () => {
    const run = await api.t.app.inject({
      method: 'POST',
      url: '/v1/jobs/expire/run',
      headers: api.t.adminHeaders,
    });
    assert.equal(run.statusCode, 200, run.body);
    assert.equal(run.json().job, 'expire');
    assert.equal(run.json().as_of, clock.now().toISOString());
  });
});
