import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../../src/domain/config/schema.ts';
import { validateConfig, type ConfigProblem } from '../../src/domain/config/validate.ts';
import { demoConfigDoc } from '../fixtures/config.ts';

// The document under test is deliberately loose: many cases break its shape.
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function problemsOf(mutate: (d: Doc) => void): ConfigProblem[] {
  const doc = demoConfigDoc() as Doc;
  mutate(doc);
  const r = validateConfig(doc);
  assert.equal(r.ok, false, 'expected the document to be rejected');
  return r.ok ? [] : r.errors;
}

function assertProblemAt(problems: readonly ConfigProblem[], path: string, message?: RegExp): void {
  const hit = problems.find((p) => p.path === path && (!message || message.test(p.message)));
  assert.ok(
    hit,
    `no problem at ${path}${message ? ` matching ${message}` : ''}; got ${JSON.stringify(problems)}`,
  );
}

const prog = (d: Doc, id: string): Doc => d.programs.find((p: Doc) => p.id === id);

void describe('validateConfig', () => {
  void it('accepts the demo document and returns it typed', () => {
    const r = validateConfig(demoConfigDoc());
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    const config: Config = r.config;
    assert.equal(config.group.default_program, 'acme-points');
  });

  void it('rejects a non-object at the root', () => {
    for (const doc of [null, 42, 'x', []]) {
      const r = validateConfig(doc);
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.errors.some((e) => e.path === ''));
    }
  });

  const cases: [string, (d: Doc) => void, string, RegExp?][] = [
    ['duplicate brand id', (d) => (d.brands[1].id = 'northwind'), '/brands/1/id', /duplicate brand/],
    ['duplicate store id', (d) => (d.stores[1].id = 'store_atl_012'), '/stores/1/id', /duplicate store/],
    [
      'duplicate program id',
      (d) => (d.programs[3].id = 'harbor-rewards'),
      '/programs/3/id',
      /duplicate program/,
    ],
    [
      'duplicate rule id',
      (d) => (prog(d, 'northwind-stars').rules[1].id = 'gold-bonus'),
      '/programs/1/rules/1/id',
      /duplicate rule/,
    ],
    [
      'duplicate tier id',
      (d) => (prog(d, 'northwind-stars').tiers[1].id = 'silver'),
      '/programs/1/tiers/1/id',
      /duplicate tier/,
    ],
    ['unknown default program', (d) => (d.group.default_program = 'nope'), '/group/default_program'],
    ['unknown brand program', (d) => (d.brands[0].program = 'nope'), '/brands/0/program', /not configured/],
    [
      'brand on the default program',
      (d) => (d.brands[0].program = 'acme-points'),
      '/brands/0/program',
      /default program/,
    ],
    [
      'two brands on one program',
      (d) => (d.brands[1].program = 'northwind-stars'),
      '/brands/1/program',
      /already belongs/,
    ],
    ['unknown store brand', (d) => (d.stores[3].brand = 'nope'), '/stores/3/brand'],
    [
      'program currency without fx',
      (d) => (d.programs[3].currency = 'CHF'),
      '/programs/3/currency',
      /no fx rate/,
    ],
    ['brand currency without fx', (d) => (d.brands[2].currency = 'CHF'), '/brands/2/currency', /no fx rate/],
    ['fx rate zero', (d) => (d.fx_rates[0].rate = '0'), '/fx_rates/0/rate'],
    [
      'fx rate for the common currency',
      (d) => d.fx_rates.push({ currency: 'USD', rate: '2', effective_from: '2026-01-01T00:00:00Z' }),
      '/fx_rates/2/rate',
    ],
    ['duplicate fx instant', (d) => d.fx_rates.push({ ...d.fx_rates[0] }), '/fx_rates/2/effective_from'],
    ['bad timestamp', (d) => (d.fx_rates[0].effective_from = '2026-13-01'), '/fx_rates/0/effective_from'],
    [
      'rule without effect',
      (d) => delete prog(d, 'northwind-stars').rules[0].multiplier,
      '/programs/1/rules/0',
      /multiplier or bonus_points/,
    ],
    [
      'multiplier zero',
      (d) => (prog(d, 'northwind-stars').rules[0].multiplier = '0'),
      '/programs/1/rules/0/multiplier',
      /> 0/,
    ],
    [
      'negative bonus',
      (d) => (prog(d, 'northwind-stars').rules[2].bonus_points = '-1'),
      '/programs/1/rules/2/bonus_points',
      />= 0/,
    ],
    [
      'bonus finer than pt4',
      (d) => (prog(d, 'northwind-stars').rules[2].bonus_points = '0.00001'),
      '/programs/1/rules/2/bonus_points',
      /4 decimal/,
    ],
    [
      'valid_from not before valid_to',
      (d) => (prog(d, 'northwind-stars').rules[1].valid_to = '2026-01-01T00:00:00Z'),
      '/programs/1/rules/1/valid_to',
    ],
    [
      'valid_from on a day the month lacks',
      (d) => (prog(d, 'northwind-stars').rules[1].valid_from = '2026-02-30T00:00:00Z'),
      '/programs/1/rules/1/valid_from',
    ],
    ['point_value zero', (d) => (d.programs[0].point_value = '0'), '/programs/0/point_value'],
    ['negative earn points', (d) => (d.programs[0].earn.points = '-1'), '/programs/0/earn/points'],
    [
      'zero per_amount_minor',
      (d) => (d.programs[0].earn.per_amount_minor = 0),
      '/programs/0/earn/per_amount_minor',
    ],
    [
      'cap zero',
      (d) => (prog(d, 'northwind-stars').caps.max_points_per_event = '0'),
      '/programs/1/caps/max_points_per_event',
    ],
    [
      'multiplier cap negative',
      (d) => (prog(d, 'northwind-stars').caps.max_multiplier = '-2'),
      '/programs/1/caps/max_multiplier',
    ],
    [
      'reimbursement too high',
      (d) => (prog(d, 'northwind-stars').settlement.reimbursement_rate = '10.5'),
      '/programs/1/settlement/reimbursement_rate',
    ],
    [
      'reimbursement negative',
      (d) => (prog(d, 'northwind-stars').settlement.reimbursement_rate = '-0.1'),
      '/programs/1/settlement/reimbursement_rate',
    ],
    [
      'upper tier without qualify',
      (d) => delete prog(d, 'northwind-stars').tiers[1].qualify,
      '/programs/1/tiers/1/qualify',
      /lowest tier/,
    ],
    [
      'decreasing tier threshold',
      (d) =>
        prog(d, 'northwind-stars').tiers.push({
          id: 'platinum',
          qualify: { metric: 'spend_minor', at_least: 100 },
        }),
      '/programs/1/tiers/2/qualify/at_least',
    ],
    [
      'tiers on the default program',
      (d) => (d.programs[0].tiers = [{ id: 'base' }]),
      '/programs/0/tiers',
      /default program/,
    ],
    [
      'CEL syntax error',
      (d) => (prog(d, 'northwind-stars').rules[0].when = "member.tier == 'gold' &&"),
      '/programs/1/rules/0/when',
      /gold-bonus/,
    ],
    [
      'CEL type error',
      (d) => (prog(d, 'northwind-stars').rules[0].when = "1 + 'a' == 2"),
      '/programs/1/rules/0/when',
      /gold-bonus/,
    ],
    [
      'CEL non-boolean',
      (d) => (prog(d, 'northwind-stars').rules[0].when = 'member.id + "x"'),
      '/programs/1/rules/0/when',
      /boolean/,
    ],
    [
      'CEL unknown variable',
      (d) => (prog(d, 'northwind-stars').rules[0].when = 'customer.vip'),
      '/programs/1/rules/0/when',
      /gold-bonus/,
    ],
    [
      'event rule reading item',
      (d) => (prog(d, 'northwind-stars').rules[2].when = "item.sku == 'x'"),
      '/programs/1/rules/2/when',
      /web-bonus.*item/,
    ],
    ['unknown property', (d) => (d.programs[0].colour = 'red'), '/programs/0/colour'],
    ['missing required', (d) => delete d.group.common_currency, '/group/common_currency'],
    [
      'literal union',
      (d) => (d.programs[0].rounding = 'up'),
      '/programs/0/rounding',
      /floor, nearest, accumulate/,
    ],
    // Points that expire before they leave pending are never spendable.
    [
      'rolling expiry not longer than pending_days',
      (d) => (prog(d, 'northwind-stars').pending_days = 365),
      '/programs/1/expiry/days',
      /expiry days \(365\) must exceed pending_days \(365\)/,
    ],
    [
      'end_of_period after_days shorter than pending_days',
      (d) => (prog(d, 'harbor-rewards').pending_days = 366),
      '/programs/2/expiry/after_days',
      /after_days \(365\) must be at least pending_days \(366\)/,
    ],
    [
      'inactivity expiry not longer than pending_days',
      (d) => (prog(d, 'summit-miles').pending_days = 800),
      '/programs/3/expiry/days',
    ],
    [
      "a tier's expiry_days not longer than pending_days",
      (d) => {
        prog(d, 'northwind-stars').pending_days = 14;
        prog(d, 'northwind-stars').tiers[1].expiry_days = 14;
      },
      '/programs/1/tiers/1/expiry_days',
      /tier "gold"/,
    ],
    [
      'discriminated union',
      (d) => (d.programs[0].expiry = { kind: 'rolling', days: 0 }),
      '/programs/0/expiry/days',
    ],
  ];
  for (const [name, mutate, path, message] of cases) {
    void it(`reports ${name} at ${path}`, () => assertProblemAt(problemsOf(mutate), path, message));
  }

  void it('reports every problem of a document at once', () => {
    const problems = problemsOf((d) => {
      d.stores[0].brand = 'nope';
      d.stores[1].channel = 'fax'; // a shape error must not hide the semantic ones
      prog(d, 'northwind-stars').rules[0].when = '(';
      d.programs[0].point_value = '0';
    });
    for (const path of [
      '/stores/0/brand',
      '/stores/1/channel',
      '/programs/1/rules/0/when',
      '/programs/0/point_value',
    ]) {
      assertProblemAt(problems, path);
    }
  });

  void it("checks a program's rule conditions even when the program has a shape error", () => {
    const problems = problemsOf((d) => {
      const stars = prog(d, 'northwind-stars');
      stars.currency = 'dollars'; // the program no longer matches its schema
      stars.rules[0].when = '(';
      stars.rules[1].id = stars.rules[0].id;
    });
    assertProblemAt(problems, '/programs/1/currency');
    assertProblemAt(problems, '/programs/1/rules/0/when');
    assertProblemAt(problems, '/programs/1/rules/1/id', /duplicate rule id/);
  });

  void it('accepts accumulate programs with fractional points and decimals in caps', () => {
    const doc = demoConfigDoc() as Doc;
    prog(doc, 'northwind-stars').caps.max_points_per_event = '99.5';
    prog(doc, 'northwind-stars').rules[2].bonus_points = '0.0001';
    assert.ok(validateConfig(doc).ok);
  });

  void it('bounds the number of problems it returns', () => {
    const doc = demoConfigDoc() as Doc;
    doc.stores = Array.from({ length: 2000 }, (_, i) => ({
      id: `s${i}`,
      brand: 'nope',
      channel: 'in_store',
    }));
    const r = validateConfig(doc);
    assert.equal(r.ok, false);
    if (!r.ok) assert.ok(r.errors.length <= 501, `${r.errors.length}`);
  });
});
