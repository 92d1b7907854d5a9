import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { demoConfigDoc } from '../fixtures/config.ts';
import type { TestService } from '../helpers/store.ts';
import { serviceWithApi, shirt, type Api } from './lifecycle-helpers.ts';

// A base tier (the lowest tier, with no qualify rule) is held by every enrolled member, and a
// purchase enrolls its member: so every purchase earns with at least the base tier, whether it is
// the member's first or arrives after a later-dated one (the base tier's history then starts
// after it). The northwind-stars program here has a rule on its base tier (silver); the points a
// purchase earns must not depend on the order purchases arrive in, as long as no purchase moves
// the member above the base tier (gold needs 50,000 cents).

const NOW = '2026-11-20T12:00:00.000Z';
const SILVER_BONUS = 7;

function configWithBaseTierRule() {
  const doc = demoConfigDoc();
  const program = doc.programs.find((p) => p.id === 'northwind-stars')!;
  program.rules = [
    ...(program.rules ?? []),
    { id: 'silver-bonus', when: "member.tier == 'silver'", bonus_points: String(SILVER_BONUS) },
  ];
  return doc;
}

interface Accrual {
  program_id: string;
  points: number;
  tier: string | null;
  rules_applied: string[];
}

const stars = (body: { accruals: Accrual[] }) =>
  body.accruals.find((a) => a.program_id === 'northwind-stars')!;

void describe('a base tier applies to every purchase of an enrolled member', () => {
  let t: TestService;
  let api: Api;
  before(async () => {
    ({ t, api } = await serviceWithApi(NOW, configWithBaseTierRule()));
  });
  after(async () => t?.close());

  /** A $`cents` purchase `minute` minutes after three hours before now. */
  const purchase = (member: string, minute: number, cents: number) => ({
    ...api.purchaseEvent(member, 'store_atl_012', [shirt(cents)]),
    transaction_ts: new Date(Date.parse(NOW) - 3 * 3_600_000 + minute * 60_000).toISOString(),
  });
  const send = async (event: object) => (await api.post('/v1/events', event)) as { accruals: Accrual[] };

  void it("a member's first purchase earns with the base tier it enrolls the member in", async () => {
    const first = stars(await send(purchase('bt_first', 0, 2000)));
    assert.equal(first.tier, 'silver');
    assert.deepEqual(first.rules_applied, ['silver-bonus']);
    assert.equal(first.points, 10 + SILVER_BONUS); // 5 per $10, plus the base tier's bonus
  });

  void it('points do not depend on the order purchases arrive in, one by one or in a batch (property)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ cents: fc.integer({ min: 100, max: 9_000 }), order: fc.nat() }), {
          minLength: 2,
          maxLength: 5,
        }),
        fc.constantFrom('single', 'batch'),
        async (specs, path) => {
          const tag = `bt${run++}`;
          const events = (member: string) =>
            specs.map((s, i) => purchase(`${tag}_${member}`, i * 5, s.cents));
          // In time order, one by one: the reference.
          const inOrder = [];
          for (const e of events('a')) inOrder.push(stars(await send(e)));
          // Another member, the same purchases in another order.
          const arrival = specs.map((s, i) => ({ i, k: s.order })).sort((x, y) => x.k - y.k || y.i - x.i);
          const shuffled = events('b');
          const got: Accrual[] = [];
          if (path === 'single') {
            for (const { i } of arrival) got[i] = stars(await send(shuffled[i]!));
          } else {
            const { results } = (await api.post(
              '/v1/events/batch',
              { events: arrival.map(({ i }) => shuffled[i]) },
              200,
            )) as { results: { http_status: number; accruals: Accrual[] }[] };
            arrival.forEach(({ i }, n) => {
              assert.equal(results[n]!.http_status, 201);
              got[i] = stars(results[n]!);
            });
          }
          for (const [i, want] of inOrder.entries()) {
            assert.deepEqual(got[i], want, `purchase ${i}`);
            assert.ok(
              want.rules_applied.includes('silver-bonus'),
              `purchase ${i} earns the base tier's rule`,
            );
          }
        },
      ),
      { numRuns: 12 },
    );
    const v = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
    assert.equal(v.json<{ ok: boolean }>().ok, true, v.body);
  });
});
