// The member statement (issue 5, "Must show"): for a member with activity at three brands, the
// totals tie exactly to the ledger — per program, opening (= balances as of `from`) + every
// movement (earned, redeemed, transferred, reversed, expired, adjusted) = closing (= balances as
// of `to`), and each section equals the member's activity entries of that kind in the period. The
// HTML statement is rendered and checked for its conversion lines, per brand template and locale.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';
import { Api, DAY_MS, pt4, shirt, uid, type Json } from './lifecycle-helpers.ts';

const NOW = '2026-03-10T12:00:00.000Z';
const FROM = '2026-03-01T00:00:00.000Z';
const clock = new ManualClock(NOW);
let t: TestService;
let api: Api;
const m = uid('mbr_stmt');
const friend = uid('mbr_friend');
const at = (iso: string) => clock.set(iso);
const redemptions: Json[] = [];

const SECTIONS = ['earned', 'redeemed', 'transferred', 'reversed', 'expired', 'adjusted', 'other'] as const;
const SECTION_OF: Record<string, (typeof SECTIONS)[number]> = {
  accrual: 'earned',
  referral_bonus: 'earned',
  redemption: 'redeemed',
  hold: 'redeemed',
  capture: 'redeemed',
  release: 'redeemed',
  redemption_reversal: 'redeemed',
  transfer: 'transferred',
  reversal: 'reversed',
  expiry: 'expired',
  adjustment: 'adjusted',
};

before(async () => {
  t = await createTestService({ clock });
  api = new Api(t, clock);
  await applyDemoConfig(t.app);
  // Before the period: the opening balance.
  at('2026-02-20T10:00:00Z');
  await api.purchase(m, 'store_atl_012', [shirt(10000)]); // northwind-stars 50, acme 10 (issued by northwind)
  await api.purchase(friend, 'store_atl_012', [shirt(1000)]);
  // In the period, at three brands.
  at('2026-03-02T10:00:00Z');
  const harborPurchase = await api.purchase(m, 'web_harbor', [shirt(2500, 2)]); // harbor-rewards 50, acme 5
  at('2026-03-02T11:00:00Z');
  await api.purchase(m, 'web_northwind', [shirt(2000)]); // northwind-stars 10 + web-bonus 50, acme 2
  at('2026-03-03T10:00:00Z');
  await api.purchase(m, 'store_lon_001', [shirt(3000)]); // summit-miles 60, acme 3
  at('2026-03-04T10:00:00Z');
  redemptions.push(
    await api.redeem({ member_id: m, brand_id: 'northwind', program_id: 'harbor-rewards', points: 20 }),
  ); // cross-brand: harbor → northwind
  at('2026-03-05T10:00:00Z');
  redemptions.push(
    await api.redeem({ member_id: m, brand_id: 'summit', group_redemption: true, points: 15 }),
  ); // the pool, at summit
  at('2026-03-05T11:00:00Z');
  const hold = await api.redeem({
    member_id: m,
    brand_id: 'harbor',
    program_id: 'summit-miles',
    points: 10,
    capture: false,
  });
  at('2026-03-05T11:05:00Z');
  await api.post(`/v1/redemptions/${hold.redemption_id}/capture`, {}, 200);
  redemptions.push(hold);
  at('2026-03-06T10:00:00Z');
  await api.refund(harborPurchase, [shirt(2500, 1)]);
  at('2026-03-07T10:00:00Z');
  await api.adjust({
    member_id: m,
    program_id: 'northwind-stars',
    points: 25,
    reason_code: 'goodwill',
    note: 'parcel lost',
  });
  at('2026-03-08T10:00:00Z');
  await api.post(
    '/v1/transfers',
    {
      from_member_id: m,
      to_member_id: friend,
      program_id: 'summit-miles',
      points: 5,
      idempotency_key: uid('trf'),
    },
    201,
  );
  at(NOW);
});
after(async () => {
  await t?.close();
});

async function statement(from: string, to: string, q = ''): Promise<Json> {
  return api.get(`/v1/members/${m}/statement?from=${from}&to=${to}${q}`);
}

/** Σ points of the member's activity entries in (from, to], per program and section. */
async function activityBySection(
  member_id: string,
  from: string,
  to: string,
): Promise<Map<string, Map<string, bigint>>> {
  const out = new Map<string, Map<string, bigint>>();
  let cursor: string | null = null;
  do {
    const page: Json = await api.get(
      `/v1/members/${member_id}/activity?limit=5${cursor ? `&cursor=${cursor}` : ''}`,
    );
    for (const e of page.data as Json[]) {
      const when = Date.parse(e.at);
      if (when <= Date.parse(from) || when > Date.parse(to)) continue;
      for (const p of e.points as Json[]) {
        const byProgram = out.get(p.program_id) ?? new Map<string, bigint>();
        const section = SECTION_OF[e.kind] ?? 'other';
        byProgram.set(section, (byProgram.get(section) ?? 0n) + pt4(p.points));
        out.set(p.program_id, byProgram);
      }
    }
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

// What the member's accounts hold: the statement's balance (expired points count until swept).
const total = (b: Json) => pt4(b.available) + pt4(b.pending) + pt4(b.held) + pt4(b.expired_not_swept ?? 0);

void describe('member statement (JSON)', () => {
  void it('ties exactly to the ledger for a member with activity at three brands', async () => {
    const s = await statement(FROM, NOW);
    assert.deepEqual(
      s.programs.map((p: Json) => p.program_id),
      ['acme-points', 'harbor-rewards', 'northwind-stars', 'summit-miles'],
    );
    const opening = await api.balances(m, FROM);
    const closing = await api.balances(m, NOW);
    const activity = await activityBySection(m, FROM, NOW);
    for (const p of s.programs as Json[]) {
      const sections = SECTIONS.map((k) => pt4(p[k].points));
      const movements = sections.reduce((a, b) => a + b, 0n);
      assert.equal(pt4(p.movements), movements, `${p.program_id}: sections sum to movements`);
      assert.equal(
        pt4(p.opening.balance) + movements,
        pt4(p.closing.balance),
        `${p.program_id}: opening + movements = closing`,
      );
      assert.equal(p.ties, true);
      // The statement's balances are the ledger's balances at those instants…
      assert.equal(
        pt4(p.opening.balance),
        opening[p.program_id] ? total(opening[p.program_id]!) : 0n,
        `${p.program_id}: opening = balances as of from`,
      );
      assert.equal(
        pt4(p.closing.balance),
        total(closing[p.program_id]!),
        `${p.program_id}: closing = balances as of to`,
      );
      assert.equal(p.closing.available, closing[p.program_id]!.available);
      // …and each section is the member's entries of that kind in the period.
      for (const k of SECTIONS) {
        assert.equal(
          pt4(p[k].points),
          activity.get(p.program_id)?.get(k) ?? 0n,
          `${p.program_id}.${k} = activity`,
        );
        if (k !== 'other')
          assert.equal(
            p[k].items.reduce((a: bigint, i: Json) => a + pt4(i.points), 0n),
            pt4(p[k].points),
            `${p.program_id}.${k} items sum`,
          );
      }
    }
    const byId = Object.fromEntries(s.programs.map((p: Json) => [p.program_id, p]));
    // Opening: only the February purchase.
    assert.equal(byId['northwind-stars'].opening.balance, 50);
    assert.equal(byId['acme-points'].opening.balance, 10);
    assert.equal(byId['harbor-rewards'].opening.balance, 0);
    // Earned at three brands, with the rules that applied.
    const earnedBrands = new Set(
      s.programs.flatMap((p: Json) => p.earned.items.map((i: Json) => i.brand_id)),
    );
    assert.deepEqual([...earnedBrands].sort(), ['harbor', 'northwind', 'summit']);
    const web = byId['northwind-stars'].earned.items[0];
    assert.equal(web.points, 60);
    assert.deepEqual(web.rules_applied, ['web-bonus']);
    assert.deepEqual(web.bonuses, [{ rule_id: 'web-bonus', points: 50 }]);
    assert.equal(web.base_points, 10);
    // Adjustments and transfers are their own sections.
    assert.equal(byId['northwind-stars'].adjusted.points, 25);
    assert.equal(byId['northwind-stars'].adjusted.items[0].note, 'parcel lost');
    assert.deepEqual(
      byId['summit-miles'].transferred.items.map((i: Json) => [
        i.direction,
        i.counterparty_member_id,
        i.points,
      ]),
      [['out', friend, -5]],
    );
    assert.ok(byId['harbor-rewards'].reversed.points < 0);
  });

  void it('spells out each cross-brand conversion of what was redeemed', async () => {
    const s = await statement(FROM, NOW);
    const byId = Object.fromEntries(s.programs.map((p: Json) => [p.program_id, p]));
    const harbor = byId['harbor-rewards'].redeemed.items;
    assert.equal(harbor.length, 1);
    assert.equal(harbor[0].redemption_id, redemptions[0]!.redemption_id);
    assert.equal(harbor[0].brand_id, 'northwind');
    assert.deepEqual(harbor[0].conversions, [
      {
        program_id: 'harbor-rewards',
        issuing_brand_id: 'harbor',
        points: 20,
        value: { amount_minor: 11, currency: 'USD' },
        conversion: '1 harbor-rewards point = 0.0054 USD',
        cross_brand: true,
      },
    ]);
    // Each conversion matches what the redemption told the member at the time.
    for (const r of redemptions) {
      const lines = s.programs.flatMap((p: Json) =>
        p.redeemed.items
          .filter((i: Json) => i.redemption_id === r.redemption_id)
          .flatMap((i: Json) => i.conversions),
      );
      assert.ok(lines.length > 0, `${r.redemption_id} is on the statement`);
      for (const b of r.breakdown_by_program as Json[]) {
        const line = lines.find(
          (c: Json) => c.program_id === b.program_id && c.issuing_brand_id === b.issuing_brand_id,
        );
        assert.ok(line, `${b.program_id}/${b.issuing_brand_id}`);
        assert.equal(line.conversion, b.conversion);
        assert.equal(line.points, b.points);
      }
    }
    // The held-then-captured redemption shows once, as its capture.
    const summit = byId['summit-miles'].redeemed.items;
    assert.deepEqual(
      summit
        .filter((i: Json) => i.redemption_id === redemptions[2]!.redemption_id)
        .map((i: Json) => [i.kind, i.points]),
      [['capture', -10]],
    );
    assert.equal(
      summit.find((i: Json) => i.kind === 'capture').conversions[0].conversion,
      '1 summit-miles point = 0.0254 USD',
    );
  });

  void it('answers a sub-period that ties to the neighbouring ones', async () => {
    const mid = '2026-03-05T10:30:00.000Z';
    const [a, b, whole] = await Promise.all([
      statement(FROM, mid),
      statement(mid, NOW),
      statement(FROM, NOW),
    ]);
    for (const w of whole.programs as Json[]) {
      const pa = a.programs.find((p: Json) => p.program_id === w.program_id);
      const pb = b.programs.find((p: Json) => p.program_id === w.program_id);
      assert.equal(pa.opening.balance, w.opening.balance);
      assert.equal(
        pa.closing.balance,
        pb.opening.balance,
        `${w.program_id}: one period closes where the next opens`,
      );
      assert.equal(pb.closing.balance, w.closing.balance);
      assert.equal(pt4(pa.movements) + pt4(pb.movements), pt4(w.movements));
    }
  });

  void it('refuses an empty or inverted period and an unknown member', async () => {
    const bad = await api.inject('GET', `/v1/members/${m}/statement?from=${NOW}&to=${FROM}`);
    assert.equal(bad.statusCode, 422);
    assert.equal(bad.json<Json>().error.code, 'INVALID_PERIOD');
    const none = await api.inject('GET', `/v1/members/nobody_at_all/statement`);
    assert.equal(none.statusCode, 404);
    const brand = await api.inject('GET', `/v1/members/${m}/statement?brand_id=nope`);
    assert.equal(brand.statusCode, 422);
    const dflt = await api.get(`/v1/members/${m}/statement`);
    assert.equal(dflt.to, NOW);
    assert.equal(dflt.from, new Date(Date.parse(NOW) - 30 * DAY_MS).toISOString());
  });
});

void describe('member statement (HTML)', () => {
  void it('renders the default template with every conversion line and the tie-out', async () => {
    const res = await api.inject('GET', `/v1/members/${m}/statement?from=${FROM}&to=${NOW}`, undefined, {
      accept: 'text/html',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
    const body = res.body;
    assert.match(body, /^<!doctype html>/);
    assert.match(body, /<html lang="en-US">/);
    for (const line of [
      '1 harbor-rewards point = 0.0054 USD',
      '1 northwind-stars point = 0.01 USD',
      '1 summit-miles point = 0.0254 USD',
    ]) {
      assert.ok(body.includes(`<td class="conversion">${line}</td>`), `conversion line ${line}`);
    }
    assert.ok(
      body.includes('issued by Harbor Grocery · redeemed at Northwind Apparel'),
      body.slice(
        body.indexOf('data-program="harbor-rewards"'),
        body.indexOf('data-program="northwind-stars"'),
      ),
    );
    assert.ok(body.includes('$0.11'), 'money formatted by Intl (en-US)');
    assert.ok(body.includes('web-bonus'), 'the rules that applied');
    assert.ok(body.includes('parcel lost'));
    assert.equal((body.match(/<section class="program"/g) ?? []).length, 4);
  });

  void it('renders a brand’s template in its locale', async () => {
    const res = await api.inject(
      'GET',
      `/v1/members/${m}/statement?from=${FROM}&to=${NOW}&brand_id=harbor`,
      undefined,
      { accept: 'text/html,application/xhtml+xml' },
    );
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-language'], 'de-DE');
    const body = res.body;
    assert.match(body, /<html lang="de-DE">/);
    assert.ok(body.includes('Harbor Grocery'));
    assert.ok(body.includes('Punkteauszug'));
    assert.ok(body.includes('<td class="conversion">1 harbor-rewards point = 0.0054 USD</td>'));
    assert.ok(body.includes('0,11\u00a0$'), 'de-DE money format');
    const en = await api.inject(
      'GET',
      `/v1/members/${m}/statement?from=${FROM}&to=${NOW}&brand_id=northwind&locale=fr-FR`,
      undefined,
      { accept: 'text/html' },
    );
    assert.match(en.body, /<html lang="fr-FR">/);
    assert.ok(en.body.includes('Northwind Apparel'));
    assert.ok(en.body.includes('0,11\u00a0$US'), 'fr-FR money format');
    const json = await api.inject('GET', `/v1/members/${m}/statement?from=${FROM}&to=${NOW}`, undefined, {
      accept: 'application/json, text/html',
    });
    assert.match(String(json.headers['content-type']), /application\/json/);
  });
});

void describe('statement: expiry', () => {
  void it('shows what expires soon, then what expired, and still ties', async () => {
    // The February lots (northwind-stars 50 − 15 spent at summit = 35, acme 10) expire 2027-02-20T09:59Z.
    const soon = await statement(NOW, '2027-01-01T00:00:00.000Z');
    const ns = soon.programs.find((p: Json) => p.program_id === 'northwind-stars');
    const lot = ns.expiring_soon.lots.find((l: Json) => l.expires_at === '2027-02-20T09:59:00.000Z');
    assert.ok(lot, JSON.stringify(ns.expiring_soon));
    assert.equal(lot.points, 35);
    assert.equal(ns.expiring_soon.window_days, 90);

    const asOf = '2027-02-21T00:00:00.000Z';
    await api.runJob('expire', asOf);
    const s = await statement(NOW, '2027-03-01T00:00:00.000Z');
    const closing = await api.balances(m, '2027-03-01T00:00:00.000Z');
    for (const p of s.programs as Json[]) {
      assert.equal(p.ties, true);
      assert.equal(pt4(p.closing.balance), total(closing[p.program_id]!));
    }
    const byId = Object.fromEntries(s.programs.map((p: Json) => [p.program_id, p]));
    assert.equal(byId['northwind-stars'].expired.points, -35);
    assert.deepEqual(byId['northwind-stars'].expired.items[0].by_brand, [
      { issuing_brand_id: 'northwind', points: 35 },
    ]);
    assert.ok(byId['acme-points'].expired.points <= -10);
  });

  void it('agrees with balances before the expire job: held points are not expiring, expired ones not available', async () => {
    const who = uid('mbr_stmt_unswept');
    const get = (from: string, to: string) => api.get(`/v1/members/${who}/statement?from=${from}&to=${to}`);
    const stars = (s: Json) => (s.programs as Json[]).find((p) => p.program_id === 'northwind-stars')!;
    at('2026-03-10T12:00:00Z');
    await api.purchase(who, 'store_atl_012', [shirt(10000)]); // 50 stars, expiring 2027-03-10T11:59Z
    at('2027-01-10T00:00:00Z');
    const hold = await api.redeem({ member_id: who, brand_id: 'northwind', points: 20, capture: false });
    at('2027-01-10T00:01:00Z');
    const held = stars(await get('2027-01-01T00:00:00Z', '2027-01-10T00:01:00Z'));
    const balance = (await api.balances(who, '2027-01-10T00:01:00Z'))['northwind-stars']!;
    assert.equal(held.expiring_soon.points, 30);
    assert.equal(
      held.expiring_soon.points,
      (balance.expiring as Json[]).reduce((s, e) => s + (e.points as number), 0),
    );
    await api.post(`/v1/redemptions/${hold.redemption_id}/release`, {}, 200);

    // Past the expiry, the expire job not run: out of available, as balances says.
    at('2027-03-20T00:00:00Z');
    for (const to of ['2027-03-20T00:00:00.000Z', '2027-03-15T00:00:00.000Z']) {
      const s = stars(await get('2027-01-01T00:00:00Z', to));
      const b = (await api.balances(who, to))['northwind-stars']!;
      assert.deepEqual(
        [s.closing.available, s.closing.expired_not_swept, s.closing.balance, s.closing.value.amount_minor],
        [0, 50, 50, 0],
        to,
      );
      assert.equal(s.closing.available, b.available);
      assert.equal(s.closing.expired_not_swept, b.expired_not_swept);
      assert.equal(s.ties, true);
    }
    // Swept later: a statement up to an instant before the sweep still says the same.
    await api.runJob('expire', '2027-03-20T00:00:00Z');
    const before = stars(await get('2027-01-01T00:00:00Z', '2027-03-15T00:00:00.000Z'));
    assert.deepEqual([before.closing.available, before.closing.expired_not_swept], [0, 50]);
    const after = stars(await get('2027-01-01T00:00:00Z', '2027-03-20T00:00:00.000Z'));
    assert.deepEqual(
      [after.closing.available, after.closing.expired_not_swept, after.closing.balance],
      [0, 0, 0],
    );
  });

  void it('answers for a period ending at the last instant RFC 3339 can write', async () => {
    const s = await statement(FROM, '9999-12-31T23:59:59.000Z');
    assert.ok((s.programs as Json[]).every((p) => p.ties === true));
  });
});

void describe('statement: pending points', () => {
  void it('lists in expiring_soon what balances lists: matured points only, not pending ones', async () => {
    const doc = demoConfigDoc();
    const stars = doc.programs.find((p) => p.id === 'northwind-stars')!;
    stars.pending_days = 14;
    stars.expiry = { kind: 'rolling', days: 30 }; // inside the 90-day window while still pending
    await applyDemoConfig(t.app, doc);
    const who = uid('mbr_stmt_pending');
    at('2026-04-01T10:00:00Z');
    await api.purchase(who, 'store_atl_012', [shirt(10000)]); // 50 stars, pending until 04-15
    at('2026-04-02T00:00:00Z');
    const read = async () => {
      const s = await api.get(
        `/v1/members/${who}/statement?from=2026-04-01T00:00:00Z&to=2026-04-02T00:00:00Z`,
      );
      const b = (await api.balances(who, '2026-04-02T00:00:00Z'))['northwind-stars']!;
      return { s: (s.programs as Json[]).find((p) => p.program_id === 'northwind-stars')!, b };
    };
    const pending = await read();
    assert.equal(pending.b.pending, 50);
    assert.deepEqual(pending.b.expiring, []);
    assert.equal(pending.s.expiring_soon.points, 0, JSON.stringify(pending.s.expiring_soon));
    assert.deepEqual(pending.s.expiring_soon.lots, []);
    // Matured, the same 50 points are listed by both.
    at('2026-04-16T00:00:00Z');
    await api.runJob('mature', '2026-04-16T00:00:00Z');
    const s = await api.get(`/v1/members/${who}/statement?from=2026-04-01T00:00:00Z&to=2026-04-16T00:00:00Z`);
    const ns = (s.programs as Json[]).find((p) => p.program_id === 'northwind-stars')!;
    const b = (await api.balances(who, '2026-04-16T00:00:00Z'))['northwind-stars']!;
    assert.equal(ns.expiring_soon.points, 50);
    assert.deepEqual(
      (b.expiring as Json[]).map((e) => e.points),
      (ns.expiring_soon.lots as Json[]).map((l) => l.points),
    );
  });
});
