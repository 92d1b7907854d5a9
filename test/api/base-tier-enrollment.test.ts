// A member enrolled in a tiered program without a purchase there (the receiver of a transfer,
// the member of an adjustment; both already members through another brand) holds the program's base tier, as every enrolled member
// does (README "Configuration"): balances, the member and the tiers view all say so.
// PGlite memory:// (or PostgreSQL with DATABASE_URL).

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { TestService } from '../helpers/store.ts';
import { serviceWithApi, shirt, uid, type Api, type Json } from './lifecycle-helpers.ts';

let t: TestService | undefined;
let api: Api;

before(async () => {
  const s = await serviceWithApi('2026-06-10T00:00:00.000Z');
  t = s.t;
  api = s.api;
});
after(async () => {
  await t?.close();
});

async function tierEverywhere(member: string): Promise<(string | null)[]> {
  const balances = await api.get(`/v1/members/${member}/balances`);
  const m = await api.get(`/v1/members/${member}`);
  const tiers = await api.get(`/v1/members/${member}/tiers`);
  const of = (list: Json[]) => list.find((p) => p.program_id === 'northwind-stars')?.tier as string | null;
  return [of(balances.programs as Json[]), of(m.enrollments as Json[]), of(tiers.programs as Json[])];
}

void describe('enrolled without a purchase', () => {
  void it('the receiver of a program transfer holds the base tier', async () => {
    const from = uid('mbr');
    const to = uid('mbr');
    await api.purchase(from, 'store_atl_012', [shirt(10_000)]);
    await api.purchase(to, 'web_harbor', [shirt(10_000)]); // a member, not of northwind-stars
    await api.post('/v1/transfers', {
      from_member_id: from,
      to_member_id: to,
      program_id: 'northwind-stars',
      points: 20,
      idempotency_key: uid('tk'),
    });
    assert.deepEqual(await tierEverywhere(to), ['silver', 'silver', 'silver']);
    assert.deepEqual(await tierEverywhere(from), ['silver', 'silver', 'silver']);
  });

  void it('the member of an adjustment holds the base tier', async () => {
    const m = uid('mbr');
    await api.purchase(m, 'web_harbor', [shirt(10_000)]);
    await api.adjust({ member_id: m, program_id: 'northwind-stars', points: 30 });
    assert.deepEqual(await tierEverywhere(m), ['silver', 'silver', 'silver']);
  });
});
