import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseRfc3339 } from '../../src/domain/timestamp.ts';

void describe('parseRfc3339', () => {
  void it('reads real instants, with fractions and offsets', () => {
    assert.equal(parseRfc3339('2026-11-30T23:59:59Z'), Date.UTC(2026, 10, 30, 23, 59, 59));
    assert.equal(parseRfc3339('2024-02-29T00:00:00.5Z'), Date.UTC(2024, 1, 29, 0, 0, 0, 500));
    assert.equal(parseRfc3339('2000-02-29T01:00:00+01:00'), Date.UTC(2000, 1, 29, 0, 0, 0));
    assert.equal(parseRfc3339('2026-12-31t10:00:00z'), Date.UTC(2026, 11, 31, 10));
  });

  void it('refuses instants that do not exist instead of rolling them over', () => {
    for (const s of [
      '2026-11-31T10:00:00Z', // November has 30 days
      '2026-02-29T10:00:00Z', // 2026 is a common year
      '1900-02-29T10:00:00Z', // centuries are common unless divisible by 400
      '2026-13-01T00:00:00Z',
      '2026-00-10T00:00:00Z',
      '2026-01-00T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T23:60:00Z',
      '2026-12-31T23:59:60Z',
      '2026-01-01T10:00:00+24:00',
      '2026-01-01T10:00:00',
      '2026-01-01 10:00:00Z',
    ])
      assert.equal(parseRfc3339(s), null, s);
  });

  void it('agrees with the calendar for every day of every month', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9999 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 31 }),
        (y, mo, d) => {
          const s = `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T12:00:00Z`;
          const real = new Date(Date.UTC(y, mo - 1, d, 12));
          if (y < 100) real.setUTCFullYear(y, mo - 1, d);
          const exists = real.getUTCMonth() === mo - 1 && real.getUTCDate() === d;
          assert.equal(parseRfc3339(s), exists ? real.getTime() : null, s);
        },
      ),
    );
  });
});
