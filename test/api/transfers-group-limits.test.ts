// A program's transfer switch and daily limit hold for its points whichever transfer takes them:
// a group transfer spends only the programs that allow transfers, and each program's daily limit
// counts the points that left it by program and group transfers alike.
// Fixture: northwind-stars with transfers disabled, summit-miles limited to 10 miles a day.
// PGlite memory:// (or PostgreSQL with DATABASE_URL).

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { demoConfigDoc } from '../fixtures/config.ts';
import type { TestService } from '../helpers/store.ts';
import { serviceWithApi, shirt, uid, type Api, type Json } from './lifecycle-helpers.ts';

let t: TestService | undefined;
let api: Api;

before(async () => {
  const doc = demoConfigDoc() as Json;
  const program = (id: string) => (doc.programs as Json[]).find((p) => p.id === id)!;
  program('northwind-stars').transfer = { enabled: false };
  program('summit-miles').transfer = { daily_limit_points: '10' };
  const s = await serviceWithApi('2026-06-10T12:00:00.000Z', doc);
  t = s.t;
  api = s.api;
});
after(async () => {
  await t?.close();
});

const transfer = (body: Json) => api.command('/v1/transfers', body);

void describe('group transfers and per-program transfer rules', () => {
  void it('a group transfer does not spend a program whose transfers are disabled', async () => {
    const from = uid('mbr');
    const to = uid('mbr');
    await api.purchase(from, 'store_atl_012', [shirt(10_000)]); // 50 northwind-stars, 10 acme-points
    await api.purchase(to, 'store_atl_012', [shirt(1_000)]);
    const program = await transfer({
      from_member_id: from,
      to_member_id: to,
      points: 10,
      program_id: 'northwind-stars',
    });
    assert.equal(program.statusCode, 400, program.body);
    // Worth 0.60 USD in all, of which only the 10 acme-points (0.10) may move.
    const tooMuch = await transfer({
      from_member_id: from,
      to_member_id: to,
      points: 60,
      group_transfer: true,
    });
    assert.equal(tooMuch.statusCode, 409, tooMuch.body);
    assert.equal(tooMuch.json<Json>().error.code, 'INSUFFICIENT_POINTS');
    assert.equal(tooMuch.json<Json>().error.details.available, 10);
    const ok = await transfer({ from_member_id: from, to_member_id: to, points: 10, group_transfer: true });
    assert.equal(ok.statusCode, 201, ok.body);
    assert.deepEqual(ok.json<Json>().debited_by_program, [{ program_id: 'acme-points', points: 10 }]);
    const left = await api.balances(from);
    assert.equal(left['northwind-stars']!.available, 50);
    assert.equal(left['acme-points']!.available, 0);
  });

  void it("a program's daily limit counts the points a group transfer takes from it", async () => {
    const from = uid('mbr');
    const to = uid('mbr');
    await api.purchase(from, 'store_lon_001', [shirt(3_000)]); // 60 summit-miles, 3 acme-points
    await api.purchase(to, 'store_lon_001', [shirt(1_000)]);
    // 50 default points = 0.50 USD: 3 acme-points (0.03), then 0.47 / 0.0254 → 19 miles > 10.
    const over = await transfer({ from_member_id: from, to_member_id: to, points: 50, group_transfer: true });
    assert.equal(over.statusCode, 409, over.body);
    assert.equal(over.json<Json>().error.code, 'TRANSFER_LIMIT_EXCEEDED');
    assert.equal(over.json<Json>().error.details.program_id, 'summit-miles');
    // 20 default points: 3 acme (0.03), then 0.17 / 0.0254 → 7 miles: within the limit.
    const first = await transfer({
      from_member_id: from,
      to_member_id: to,
      points: 20,
      group_transfer: true,
    });
    assert.equal(first.statusCode, 201, first.body);
    const miles = (first.json<Json>().debited_by_program as Json[]).find(
      (d) => d.program_id === 'summit-miles',
    );
    assert.equal(miles?.points, 7);
    // 7 used today: a program transfer of 4 more would pass 10, 3 does not.
    const four = await transfer({
      from_member_id: from,
      to_member_id: to,
      points: 4,
      program_id: 'summit-miles',
    });
    assert.equal(four.statusCode, 409, four.body);
    assert.equal(four.json<Json>().error.details.used_today, 7);
    const three = await transfer({
      from_member_id: from,
      to_member_id: to,
      points: 3,
      program_id: 'summit-miles',
    });
    assert.equal(three.statusCode, 201, three.body);
    assert.equal((await api.verify()).ok, true);
  });
});
