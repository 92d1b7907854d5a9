import type { Group } from '../../domain/config/group.ts';
import { currencyExponent } from '../../domain/config/fx.ts';
import { add, mul, ZERO, type Ratio } from '../../domain/decimal.ts';
import { valueMinor } from '../../domain/lots/conversion.ts';
import { pt4ToJson, pt4ToRatio, type Pt4 } from '../../domain/points.ts';
import { programUnit } from '../../domain/valuation.ts';
import { AppError } from '../../errors.ts';
import { requireGroup } from '../config.ts';
import type { Ctx } from '../context.ts';
import { positionPairs, positionsJson, type Positions } from '../settlement/positions.ts';
import { outstandingAsOf, systemActivity, type ActivityRow, type OutstandingRow } from './queries.ts';

// GET /v1/reports/liability and `pointpool report liability`: what the group owes its members in
// points, per program and issuing brand, valued in the common currency; what each brand issued,
// redeemed, let expire (breakage) and wrote off over [from, to); and the cross-brand settlement
// flows over the same range. Valuation: points × the program's point value × fx, both as of
// `as_of`, rounded half-even once per figure (display rounding, conversion.ts); a brand's total is
// its rows' exact values summed, then rounded, so it can differ from the sum of rounded rows by
// at most half a minor unit per row. A program no longer configured (or with no fx rate at
// as_of) is listed with `value: null` rather than guessed.

interface Money {
  amount_minor: number;
  currency: string;
}
interface Figure {
  points: number;
  amount_minor: number | null;
}

export interface LiabilityReport {
  as_of: string;
  currency: string;
  outstanding: {
    program_id: string;
    issuing_brand_id: string;
    available: number;
    pending: number;
    held: number;
    points: number;
    value: Money | null;
  }[];
  outstanding_by_brand: { brand_id: string; value: Money }[];
  activity: {
    from: string | null;
    to: string;
    rows: {
      brand_id: string;
      program_id: string;
      issued: Figure;
      reversed: Figure;
      redeemed: Figure;
      expired: Figure;
      written_off: Figure;
    }[];
  };
  cross_brand_flows: Positions & { from: string | null; to: string };
}

/** as_of defaults to now; the activity range to [beginning, as_of). */
export async function liabilityReport(
  ctx: Ctx,
  as_of?: Date,
  from?: Date,
  to?: Date,
): Promise<LiabilityReport> {
  const group = await requireGroup(ctx);
  const now = ctx.clock.now();
  const at = as_of ?? now;
  const end = to ?? at;
  if (from && from.getTime() >= end.getTime())
    throw new AppError('INVALID_RANGE', '`from` must be before `to`', {
      from: from.toISOString(),
      to: end.toISOString(),
    });
  const exp = currencyExponent(group.common_currency);
  const valueOf = unitValuer(group, at);
  const money = (r: Ratio): Money => ({
    amount_minor: Number(valueMinor(r, exp)),
    currency: group.common_currency,
  });

  const lots = await outstandingAsOf(ctx.db, at.getTime() < now.getTime() ? at : null);
  const byBrand = new Map<string, Ratio>();
  const outstanding = lots.map((r: OutstandingRow) => {
    const points = r.available_pt4 + r.pending_pt4 + r.held_pt4;
    const exact = valueOf(r.program_id, points);
    if (exact) byBrand.set(r.issuing_brand_id, add(byBrand.get(r.issuing_brand_id) ?? ZERO, exact));
    return {
      program_id: r.program_id,
      issuing_brand_id: r.issuing_brand_id,
      available: pt4ToJson(r.available_pt4),
      pending: pt4ToJson(r.pending_pt4),
      held: pt4ToJson(r.held_pt4),
      points: pt4ToJson(points),
      value: exact ? money(exact) : null,
    };
  });

  const figure = (program_id: string, p: Pt4): Figure => {
    const exact = valueOf(program_id, p);
    return { points: pt4ToJson(p), amount_minor: exact ? Number(valueMinor(exact, exp)) : null };
  };
  const activity = (await systemActivity(ctx.db, from ?? null, end)).map((r: ActivityRow) => ({
    brand_id: r.brand_id,
    program_id: r.program_id,
    issued: figure(r.program_id, r.issued_pt4),
    reversed: figure(r.program_id, r.reversed_pt4),
    redeemed: figure(r.program_id, r.redeemed_pt4),
    expired: figure(r.program_id, r.expired_pt4),
    written_off: figure(r.program_id, r.written_off_pt4),
  }));

  const pairs = await positionPairs(ctx, from ?? null, end);
  return {
    as_of: at.toISOString(),
    currency: group.common_currency,
    outstanding,
    outstanding_by_brand: [...byBrand]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([brand_id, v]) => ({ brand_id, value: money(v) })),
    activity: { from: from?.toISOString() ?? null, to: end.toISOString(), rows: activity },
    cross_brand_flows: {
      from: from?.toISOString() ?? null,
      to: end.toISOString(),
      ...positionsJson(group.common_currency, pairs),
    },
  };
}

/** program → exact common-currency value of some points at `at`, or null when it cannot be valued. */
function unitValuer(group: Group, at: Date): (program_id: string, points_pt4: Pt4) => Ratio | null {
  const units = new Map<string, Ratio | null>();
  return (program_id, points_pt4) => {
    if (!units.has(program_id)) {
      const program = group.programs.get(program_id);
      try {
        units.set(program_id, program ? programUnit(group, program, at.getTime()).unit_value : null);
      } catch {
        units.set(program_id, null); // no fx rate effective at `at`
      }
    }
    const unit = units.get(program_id);
    return unit ? mul(pt4ToRatio(points_pt4), unit) : null;
  };
}
