import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import {
  convertMinor,
  currencyExponent,
  fxFactor,
  fxRateAt,
  NoFxRateError,
} from '../../src/domain/config/fx.ts';
import { compileGroup } from '../../src/domain/config/compile.ts';
import { mul, ONE, parseDecimal, ratio } from '../../src/domain/decimal.ts';
import { demoConfigDoc, demoGroup } from '../fixtures/config.ts';

const at = (ts: string): number => Date.parse(ts);

function groupWithRates() {
  const doc = demoConfigDoc();
  doc.fx_rates!.push(
    { currency: 'EUR', rate: '1.10', effective_from: '2026-06-01T00:00:00Z' },
    { currency: 'JPY', rate: '0.0067', effective_from: '2026-01-01T00:00:00Z' },
    { currency: 'KWD', rate: '3.25', effective_from: '2026-01-01T00:00:00Z' },
  );
  return compileGroup(doc, 1);
}

void describe('fx', () => {
  const g = groupWithRates();

  void it('currencyExponent knows the zero- and three-decimal currencies', () => {
    assert.deepEqual(
      ['USD', 'EUR', 'JPY', 'KRW', 'BHD', 'KWD', 'JOD', 'OMR', 'TND'].map(currencyExponent),
      [2, 2, 0, 0, 3, 3, 3, 3, 3],
    );
  });

  void it('the common currency is always 1', () => {
    assert.deepEqual(fxRateAt(g, 'USD', 0), ONE);
  });

  void it('takes the latest rate effective at the instant (effective_from inclusive)', () => {
    assert.deepEqual(fxRateAt(g, 'EUR', at('2026-05-31T23:59:59.999Z')), parseDecimal('1.08'));
    assert.deepEqual(fxRateAt(g, 'EUR', at('2026-06-01T00:00:00Z')), parseDecimal('1.10'));
    assert.deepEqual(fxRateAt(g, 'EUR', at('2027-01-01T00:00:00Z')), parseDecimal('1.10'));
  });

  void it('throws NoFxRateError before the first rate or for an unknown currency', () => {
    assert.throws(() => fxRateAt(g, 'EUR', at('2025-12-31T23:59:59Z')), NoFxRateError);
    assert.throws(
      () => fxRateAt(g, 'CHF', at('2026-03-01T00:00:00Z')),
      (e: unknown) => e instanceof NoFxRateError && e.currency === 'CHF',
    );
  });

  void it('converts a EUR amount into USD cents exactly', () => {
    const ts = at('2026-03-01T00:00:00Z');
    assert.deepEqual(convertMinor(1000n, 'EUR', 'USD', g, ts), ratio(1080n));
    assert.deepEqual(convertMinor(1347n, 'EUR', 'USD', g, ts), parseDecimal('1454.76'));
    assert.deepEqual(convertMinor(1080n, 'USD', 'EUR', g, ts), ratio(1000n));
    assert.deepEqual(convertMinor(1000n, 'EUR', 'GBP', g, ts), ratio(108000n, 127n)); // through USD
  });

  void it('honours minor-unit exponents', () => {
    const ts = at('2026-03-01T00:00:00Z');
    assert.deepEqual(convertMinor(1000n, 'JPY', 'USD', g, ts), ratio(670n)); // ¥1000 = $6.70
    assert.deepEqual(convertMinor(1000n, 'KWD', 'USD', g, ts), ratio(325n)); // 1.000 KWD = $3.25
    assert.deepEqual(convertMinor(670n, 'USD', 'JPY', g, ts), ratio(1000n));
  });

  void it('fxFactor is the conversion of one minor unit', () => {
    const ts = at('2026-03-01T00:00:00Z');
    assert.deepEqual(fxFactor('USD', 'USD', g, ts), ONE);
    assert.deepEqual(
      mul(ratio(1347n), fxFactor('EUR', 'USD', g, ts)),
      convertMinor(1347n, 'EUR', 'USD', g, ts),
    );
  });

  void it('property: converting there and back is the identity, exactly', () => {
    const codes = ['USD', 'EUR', 'GBP', 'JPY', 'KWD'];
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.constantFrom(...codes),
        fc.constantFrom(...codes),
        (amount, a, b) => {
          const ts = at('2026-07-01T00:00:00Z');
          const there = convertMinor(amount, a, b, g, ts);
          const back = mul(there, fxFactor(b, a, g, ts));
          assert.deepEqual(back, ratio(amount));
        },
      ),
    );
  });

  void it('the demo group converts its configured currencies', () => {
    const demo = demoGroup();
    assert.deepEqual(fxRateAt(demo, 'GBP', at('2026-03-01T00:00:00Z')), parseDecimal('1.27'));
  });
});
