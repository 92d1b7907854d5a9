import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { computeExpiresAt, DAY_MS, endOfPeriod, isExpired } from '../../src/domain/expiry.ts';
import type { ExpiryConfig } from '../../src/domain/config/schema.ts';

const T = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The lot is live one ms before its expiry and expired at it. */
function assertBoundary(expires_at: number | null): void {
  assert.ok(expires_at !== null);
  assert.equal(isExpired(expires_at, expires_at - 1), false);
  assert.equal(isExpired(expires_at, expires_at), true);
  assert.equal(isExpired(expires_at, expires_at + 1), true);
}

const eop = (period: 'month' | 'quarter' | 'year', after_days: number): ExpiryConfig => ({
  kind: 'end_of_period',
  period,
  after_days,
});

void describe('computeExpiresAt', () => {
  void it('rolling: awarded + exact 24 h days', () => {
    const e = computeExpiresAt({ kind: 'rolling', days: 30 }, T('2026-03-10T15:00:00.000Z'));
    assert.equal(iso(e), '2026-04-09T15:00:00.000Z');
    assertBoundary(e);
    // 365 days across a leap day lands one calendar day earlier.
    assert.equal(
      iso(computeExpiresAt({ kind: 'rolling', days: 365 }, T('2028-01-10T00:00:00Z'))),
      '2029-01-09T00:00:00.000Z',
    );
  });

  void it('end_of_period month, incl. Dec → Jan and leap February', () => {
    const cases: [string, number, string][] = [
      ['2026-01-31T23:59:59.999Z', 0, '2026-02-01T00:00:00.000Z'],
      ['2026-01-01T00:00:00.000Z', 0, '2026-02-01T00:00:00.000Z'], // a period start belongs to that period
      ['2026-12-15T10:00:00.000Z', 0, '2027-01-01T00:00:00.000Z'],
      ['2026-12-15T10:00:00.000Z', 17, '2027-02-01T00:00:00.000Z'],
      ['2028-02-01T00:00:00.000Z', 28, '2028-03-01T00:00:00.000Z'], // lands on Feb 29 (leap)
      ['2027-02-01T00:00:00.000Z', 28, '2027-04-01T00:00:00.000Z'], // lands on Mar 1 (no leap day)
    ];
    for (const [awarded, after, expected] of cases) {
      const e = computeExpiresAt(eop('month', after), T(awarded));
      assert.equal(iso(e), expected, `${awarded} + ${after}d`);
      assertBoundary(e);
    }
  });

  void it('end_of_period quarter', () => {
    const cases: [string, number, string][] = [
      ['2026-01-05T00:00:00.000Z', 0, '2026-04-01T00:00:00.000Z'],
      ['2026-03-31T23:59:59.999Z', 0, '2026-04-01T00:00:00.000Z'],
      ['2026-04-01T00:00:00.000Z', 0, '2026-07-01T00:00:00.000Z'],
      ['2026-09-30T12:00:00.000Z', 1, '2027-01-01T00:00:00.000Z'],
      ['2026-11-15T00:00:00.000Z', 0, '2027-01-01T00:00:00.000Z'],
      ['2028-02-29T00:00:00.000Z', 90, '2028-07-01T00:00:00.000Z'], // 2028-05-29
    ];
    for (const [awarded, after, expected] of cases) {
      const e = computeExpiresAt(eop('quarter', after), T(awarded));
      assert.equal(iso(e), expected, `${awarded} + ${after}d`);
      assertBoundary(e);
    }
  });

  void it('end_of_period year, incl. a leap year', () => {
    const cases: [string, number, string][] = [
      ['2026-06-15T00:00:00.000Z', 0, '2027-01-01T00:00:00.000Z'],
      ['2026-12-31T23:59:59.999Z', 0, '2027-01-01T00:00:00.000Z'],
      ['2026-06-15T00:00:00.000Z', 365, '2028-01-01T00:00:00.000Z'],
      ['2028-01-01T00:00:00.000Z', 365, '2029-01-01T00:00:00.000Z'], // 2028-12-31: leap year has 366 days
      ['2027-01-01T00:00:00.000Z', 365, '2029-01-01T00:00:00.000Z'], // 2028-01-01
      ['2027-12-31T23:00:00.000Z', 366, '2029-01-01T00:00:00.000Z'], // 2028-12-31T23:00
    ];
    for (const [awarded, after, expected] of cases) {
      const e = computeExpiresAt(eop('year', after), T(awarded));
      assert.equal(iso(e), expected, `${awarded} + ${after}d`);
      assertBoundary(e);
    }
  });

  void it('inactivity: from last activity, defaulting to the award', () => {
    const policy: ExpiryConfig = { kind: 'inactivity', days: 180 };
    const awarded = T('2026-01-01T00:00:00Z');
    assert.equal(computeExpiresAt(policy, awarded), awarded + 180 * DAY_MS);
    const e = computeExpiresAt(policy, awarded, { last_activity_ms: T('2026-05-01T08:00:00Z') });
    assert.equal(iso(e), '2026-10-28T08:00:00.000Z');
    assertBoundary(e);
  });

  void it('never: null, and never expired', () => {
    assert.equal(computeExpiresAt({ kind: 'never' }, T('2026-01-01T00:00:00Z')), null);
    assert.equal(isExpired(null, Number.MAX_SAFE_INTEGER), false);
  });

  void it("a tier's expiry_days overrides the program policy with a rolling rule", () => {
    const awarded = T('2026-02-10T00:00:00Z');
    for (const policy of [
      eop('year', 0),
      { kind: 'never' } as const,
      { kind: 'rolling', days: 10 } as const,
    ]) {
      assert.equal(computeExpiresAt(policy, awarded, { tier_expiry_days: 730 }), awarded + 730 * DAY_MS);
    }
  });

  void it('rejects a non-integer instant', () => {
    assert.throws(() => computeExpiresAt({ kind: 'rolling', days: 1 }, 1.5), RangeError);
  });
});

void describe('endOfPeriod properties', () => {
  void it('is the first instant of a later period start and the previous boundary is not after the input', () => {
    const min = T('1971-01-01T00:00:00Z');
    const max = T('2199-12-31T00:00:00Z');
    fc.assert(
      fc.property(
        fc.integer({ min, max }),
        fc.constantFrom('month', 'quarter', 'year' as const),
        (t, period) => {
          const end = endOfPeriod(t, period);
          assert.ok(end > t);
          const d = new Date(end);
          assert.equal(d.getUTCDate(), 1);
          assert.equal(end % DAY_MS, 0);
          const months = { month: 1, quarter: 3, year: 12 }[period];
          assert.equal(d.getUTCMonth() % months, 0);
          const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - months, 1);
          assert.ok(start <= t, 'the input lies in the period just before');
        },
      ),
    );
  });
});
