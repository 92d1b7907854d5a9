// How the expire job pages (src/jobs/expire.ts, src/jobs/batch.ts): lots that share an expiry
// instant across more members than a page holds, two pages in flight at once, a member with more
// due lots than one entry takes postings, and (PostgreSQL) a member locked by a command, which is
// skipped rather than waited for and expired by the next run. Lots are seeded by SQL
// (bench/seed.ts keeps the ledger consistent), so `verify` checks every run.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { seedLots } from '../../bench/seed.ts';
import { ManualClock } from '../../src/clock.ts';
import { expireWith } from '../../src/jobs/expire.ts';
import { applyDemoConfig, createTestService, isPostgres, type TestService } from '../helpers/store.ts';

const NOW = '2026-03-10T12:00:00.000Z';
const clock = new ManualClock(NOW);
let t: TestService;
let seq = 0;

before(async () => {
  t = await createTestService({ clock });
  await applyDemoConfig(t.app);
});
after(async () => {
  await t?.close();
});

/** `members` members with `lots` northwind-stars lots each; lot k of every member expires at the
 * same instant (k minutes after a day ago), so each instant is shared by all the members. */
async function seed(members: number, lots: number): Promise<string> {
  const prefix = `xp${++seq}_`;
  await seedLots(t.ctx.db, {
    prefix,
    members,
    programs: [{ program_id: 'northwind-stars', brand_id: 'northwind' }],
    lots_per_program: lots,
    points_per_lot: 10,
    awarded_at: '2025-01-01T00:00:00.000Z',
    first_expiry: '2026-03-09T12:00:00.000Z',
    label: prefix,
  });
  return prefix;
}

async function openLots(prefix: string): Promise<number> {
  const r = await sql<{ n: number }>`select count(*)::int as n from lots
    where member_id like ${`${prefix}%`} and remaining_pt4 > 0`.execute(t.ctx.db);
  return r.rows[0]!.n;
}

async function verifyOk(): Promise<void> {
  const res = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
  const body = res.json<{ ok: boolean; checks: { ok: boolean }[] }>();
  assert.equal(body.ok, true, JSON.stringify(body.checks.filter((c) => !c.ok)));
}

const AS_OF = new Date(NOW);

void describe('expire pages', () => {
  void it('walks an instant shared by more members than a page, two pages in flight, each lot once', async () => {
    const prefix = await seed(23, 3);
    const run = await expireWith(t.ctx, AS_OF, undefined, { pageLots: 4, concurrency: 2 });
    assert.equal(run.lots_expired, 69);
    assert.equal(run.entries, 23);
    assert.equal(run.skipped_members, 0);
    assert.equal(await openLots(prefix), 0);
    const again = await expireWith(t.ctx, AS_OF, undefined, { pageLots: 4, concurrency: 2 });
    assert.equal(again.lots_expired, 0, 'the second run finds nothing');
    await verifyOk();
  });

  void it('expires a member with more due lots than an entry takes postings, in one entry', async () => {
    // Two postings per lot would be 1,200 postings, over an entry's limit of 1,000.
    const prefix = await seed(1, 600);
    const run = await expireWith(t.ctx, AS_OF);
    assert.equal(run.lots_expired, 600);
    assert.equal(run.entries, 1);
    assert.equal(await openLots(prefix), 0);
    await verifyOk();
  });

  void it(
    'skips a member a command holds, without waiting, and the next run expires it',
    { skip: !isPostgres() && 'PGlite has one connection: a held lock would block the job' },
    async () => {
      const prefix = await seed(9, 2);
      const busy = `${prefix}0000005`;
      let release!: () => void;
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = t.ctx.db.transaction().execute(async (trx) => {
        await sql`select id from members where id = ${busy} for update`.execute(trx);
        locked();
        await new Promise<void>((r) => (release = r));
      });
      await isLocked;
      const run = await expireWith(t.ctx, AS_OF, undefined, { pageLots: 2, concurrency: 2 });
      release();
      await holder;
      assert.ok(run.skipped_members >= 1, `${run.skipped_members} skipped`);
      assert.equal(run.lots_expired, 16);
      assert.equal(await openLots(prefix), 2, 'the busy member keeps its lots');
      const next = await expireWith(t.ctx, AS_OF, undefined, { pageLots: 2, concurrency: 2 });
      assert.equal(next.lots_expired, 2);
      assert.equal(await openLots(prefix), 0);
      await verifyOk();
    },
  );
});
