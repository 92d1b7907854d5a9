import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCondition, compileGroup, toCelValue } from '../../src/domain/config/compile.ts';
import { parseDecimal } from '../../src/domain/decimal.ts';
import { wholePoints } from '../../src/domain/points.ts';
import { demoConfigDoc, demoGroup } from '../fixtures/config.ts';

const ctx = {
  event: {},
  member: { id: 'm', tier: null },
  store: { id: 's', brand: 'b', channel: 'in_store' },
};

void describe('compileGroup', () => {
  const g = demoGroup(7);

  void it('builds lookup maps and carries the version', () => {
    assert.equal(g.version, 7);
    assert.equal(g.default_program_id, 'acme-points');
    assert.equal(g.common_currency, 'USD');
    assert.equal(g.stores.get('web_harbor')?.brand, 'harbor');
    assert.equal(g.brands.get('summit')?.program, 'summit-miles');
    assert.deepEqual(
      [...g.programs.keys()],
      ['acme-points', 'northwind-stars', 'harbor-rewards', 'summit-miles'],
    );
  });

  void it('maps each program to its brand, the default program to none', () => {
    assert.equal(g.programs.get('acme-points')?.brand_id, null);
    assert.equal(g.programs.get('northwind-stars')?.brand_id, 'northwind');
    assert.equal(g.programs.get('harbor-rewards')?.brand_id, 'harbor');
  });

  void it('parses decimals exactly and fills defaults', () => {
    const h = g.programs.get('harbor-rewards')!;
    assert.deepEqual(h.point_value, parseDecimal('0.005'));
    assert.equal(h.stacking, 'highest');
    assert.equal(h.late_event_window_hours, 72);
    assert.deepEqual(h.reimbursement_rate, parseDecimal('1'));
    assert.equal(h.max_points_per_event_pt4, null);
    const n = g.programs.get('northwind-stars')!;
    assert.equal(n.max_points_per_event_pt4, wholePoints(100000));
    assert.equal(n.absorb_up_to_pt4, wholePoints(100));
    assert.deepEqual(n.referral, { bonus_pt4: wholePoints(500), min_spend_minor: 5000n });
    assert.equal(n.earn_per_amount_minor, 1000n);
  });

  void it('sorts rules by priority descending, then id', () => {
    const doc = demoConfigDoc();
    doc.programs[1]!.rules!.push({ id: 'a-late', when: 'true', bonus_points: '1', priority: 10 });
    const rules = compileGroup(doc, 1).programs.get('northwind-stars')!.rules;
    assert.deepEqual(
      rules.map((r) => r.id),
      ['a-late', 'gold-bonus', 'outerwear-x3', 'web-bonus'],
    );
    assert.equal(rules[2]!.scope, 'line');
    assert.equal(rules[2]!.valid_from_ms, Date.parse('2026-01-01T00:00:00Z'));
    assert.equal(rules[3]!.bonus_pt4, wholePoints(50));
  });

  void it('sorts fx rates by effective_from', () => {
    const doc = demoConfigDoc();
    doc.fx_rates!.unshift({ currency: 'EUR', rate: '1.2', effective_from: '2026-06-01T00:00:00Z' });
    const eur = compileGroup(doc, 1).fx.get('EUR')!;
    assert.deepEqual(
      eur.map((r) => r.effective_from_ms),
      [Date.parse('2026-01-01T00:00:00Z'), Date.parse('2026-06-01T00:00:00Z')],
    );
  });
});

void describe('compiled rule conditions', () => {
  const rule = (when: string, scope: 'event' | 'line' = 'event') => {
    const doc = demoConfigDoc();
    doc.programs[1]!.rules = [{ id: 'r', when, scope, bonus_points: '1' }];
    return compileGroup(doc, 1).programs.get('northwind-stars')!.rules[0]!;
  };

  void it('matches on tier, channel and item fields', () => {
    assert.equal(rule("member.tier == 'gold'").test({ ...ctx, member: { id: 'm', tier: 'gold' } }), true);
    assert.equal(rule("member.tier == 'gold'").test(ctx), false);
    assert.equal(rule("event.channel == 'online'").test({ ...ctx, event: { channel: 'online' } }), true);
    const item = toCelValue({ sku: 'x', unit_price_cents: 60n, quantity: 2 }) as Record<string, unknown>;
    assert.equal(rule('item.unit_price_cents * item.quantity > 100', 'line').test({ ...ctx, item }), true);
  });

  void it('counts a runtime error or a non-boolean as no match', () => {
    assert.equal(rule("item.category == 'x'", 'line').test({ ...ctx, item: { sku: 'a' } }), false);
    assert.equal(rule('1 / 0 == 1').test(ctx), false);
    assert.equal(rule('member.tier').test({ ...ctx, member: { id: 'm', tier: 'gold' } }), false);
  });

  void it('compileCondition reports why a condition cannot compile', () => {
    const bad = compileCondition('member.tier ==', 'event');
    assert.equal(bad.ok, false);
    assert.equal(compileCondition("item.sku == 'a'", 'event').ok, false);
    assert.equal(compileCondition("item.sku == 'a'", 'line').ok, true);
  });

  void it('toCelValue turns integral numbers into CEL ints, deeply', () => {
    assert.deepEqual(toCelValue({ a: 1, b: [2, 1.5], c: 'x', d: null }), {
      a: 1n,
      b: [2n, 1.5],
      c: 'x',
      d: null,
    });
  });
});
