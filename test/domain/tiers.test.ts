import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { TierConfig } from '../../src/domain/config/schema.ts';
import { evaluateTier, progressToNext, tierMetric, tierWindow } from '../../src/domain/tiers.ts';
import { DAY_MS } from '../../src/domain/expiry.ts';

const tiers: TierConfig[] = [
  { id: 'silver' },
  { id: 'gold', qualify: { metric: 'spend_minor', at_least: 50_000, window_days: 365 } },
  { id: 'platinum', qualify: { metric: 'spend_minor', at_least: 200_000 } },
];

void describe('evaluateTier', () => {
  void it('qualifies for the highest tier whose threshold is met (inclusive)', () => {
    assert.equal(evaluateTier(tiers, 0n, null, 'full'), 'silver');
    assert.equal(evaluateTier(tiers, 49_999n, null, 'full'), 'silver');
    assert.equal(evaluateTier(tiers, 50_000n, null, 'full'), 'gold');
    assert.equal(evaluateTier(tiers, 10_000_000n, null, 'full'), 'platinum');
  });

  void it('upgrades at once, even several steps', () => {
    assert.equal(evaluateTier(tiers, 50_000n, 'silver', 'upgrade_only'), 'gold');
    assert.equal(evaluateTier(tiers, 200_000n, 'silver', 'upgrade_only'), 'platinum');
  });

  void it('upgrade_only never lowers', () => {
    assert.equal(evaluateTier(tiers, 0n, 'platinum', 'upgrade_only'), 'platinum');
  });

  void it('full lowers by one step per evaluation by default', () => {
    assert.equal(evaluateTier(tiers, 0n, 'gold', 'full'), 'silver');
    assert.equal(evaluateTier(tiers, 0n, 'platinum', 'full'), 'gold');
    assert.equal(evaluateTier(tiers, 60_000n, 'platinum', 'full'), 'gold');
    assert.equal(evaluateTier(tiers, 0n, 'platinum', 'full', { max_steps_down: 2 }), 'silver');
    assert.equal(evaluateTier(tiers, 0n, 'platinum', 'full', { max_steps_down: 0 }), 'platinum');
  });

  void it('with no base tier a member may have no tier; an unknown current tier counts as none', () => {
    const noBase = tiers.slice(1);
    assert.equal(evaluateTier(noBase, 10n, null, 'full'), null);
    assert.equal(evaluateTier(noBase, 10n, 'gold', 'full'), null);
    assert.equal(evaluateTier(tiers, 0n, 'bronze-retired', 'full'), 'silver');
  });

  void it('points_earned thresholds are whole points; the metric is pt4', () => {
    const pts: TierConfig[] = [
      { id: 'base' },
      { id: 'star', qualify: { metric: 'points_earned', at_least: 1_000 } },
    ];
    assert.equal(tierMetric(pts), 'points_earned');
    assert.equal(evaluateTier(pts, 9_999_999n, null, 'full'), 'base');
    assert.equal(evaluateTier(pts, 10_000_000n, null, 'full'), 'star');
  });

  void it('property: full mode moves up to the qualifying tier or down at most one step', () => {
    const ids = tiers.map((t) => t.id);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 400_000n }), fc.constantFrom(...ids), (metric, current) => {
        const q = ids.indexOf(evaluateTier(tiers, metric, null, 'full') ?? '');
        const c = ids.indexOf(current);
        const next = ids.indexOf(evaluateTier(tiers, metric, current, 'full') ?? '');
        assert.equal(next, q >= c ? q : c - 1);
        assert.equal(ids.indexOf(evaluateTier(tiers, metric, current, 'upgrade_only') ?? ''), Math.max(q, c));
      }),
    );
  });
});

void describe('tierWindow and progress', () => {
  const asOf = Date.parse('2026-11-20T14:00:00Z');
  void it('rolling window: window_days ending at as_of inclusive', () => {
    const g = tiers[1]?.qualify;
    assert.ok(g);
    assert.deepEqual(tierWindow(g, asOf), { from_ms: asOf + 1 - 365 * DAY_MS, to_ms: asOf + 1 });
    assert.deepEqual(tierWindow({ metric: 'spend_minor', at_least: 1, window_days: 30 }, asOf), {
      from_ms: asOf + 1 - 30 * DAY_MS,
      to_ms: asOf + 1,
    });
  });

  void it('calendar_year window starts on 1 January UTC', () => {
    const w = tierWindow({ metric: 'spend_minor', at_least: 1, window: 'calendar_year' }, asOf);
    assert.deepEqual(w, { from_ms: Date.parse('2026-01-01T00:00:00Z'), to_ms: asOf + 1 });
  });

  void it('progressToNext', () => {
    assert.deepEqual(progressToNext(tiers, 'silver', 12_000n), {
      next_tier: 'gold',
      metric: 12_000n,
      at_least: 50_000n,
      remaining: 38_000n,
    });
    assert.deepEqual(progressToNext(tiers, null, 1n)?.next_tier, 'gold');
    assert.deepEqual(progressToNext(tiers, 'gold', 250_000n)?.remaining, 0n);
    assert.equal(progressToNext(tiers, 'platinum', 0n), null);
  });
});
