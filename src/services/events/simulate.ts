import { parseEvent } from '../../domain/events/canonical.ts';
import { pt4ToJson } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import { requireGroup } from '../config.ts';
import type { Ctx } from '../context.ts';
import { tierAt } from '../tiers.ts';
import { inTransaction } from '../transaction.ts';
import { computeEarn } from './accrue.ts';
import { eventHash, type BrandGuard } from './intake.ts';
import { intakeVerdict } from './intake-verdict.ts';
import { EventRejected } from './rejected.ts';

/**
 * What a purchase would earn, rule by rule and line by line, without writing anything; and, as
 * `intake`, whether POST /v1/events would take it now (a late, future or duplicate event is still
 * computed: trying a rule on another day is what simulate is for).
 */
export async function simulateEvent(ctx: Ctx, raw: unknown, guard: BrandGuard) {
  const group = await requireGroup(ctx);
  const parsed = parseEvent(raw);
  if (!parsed.ok)
    throw new AppError(parsed.problem.code, parsed.problem.message, { field: parsed.problem.field });
  const ev = parsed.event;
  if (ev.event_type !== 'purchase_completed')
    throw new AppError('INVALID_EVENT', 'Only purchase_completed can be simulated', { field: 'event_type' });
  const store = group.stores.get(ev.store_id);
  if (!store) throw new AppError('UNKNOWN_STORE', undefined, { field: 'store_id' });
  guard(store.brand);
  const at = new Date(ev.transaction_ms);
  const tierOf = (program_id: string) => tierAt(ctx.db, ev.member_id, program_id, at);

  try {
    const earns = await computeEarn(group, ev, store, tierOf);
    const intake = await inTransaction(ctx.db, (trx) =>
      intakeVerdict(trx, group, ev, store, eventHash(raw), ctx.clock.now()),
    );
    return {
      status: 'simulated',
      event_id: ev.event_id,
      member_id: ev.member_id,
      intake,
      accruals: earns.map(({ program, tier, earn }) => ({
        program_id: program.id,
        points: pt4ToJson(earn.points_pt4),
        tier,
        rules_applied: earn.rules_applied,
        capped: earn.capped,
        lines: earn.lines.map((l) => ({
          line_index: l.line_index,
          sku: l.sku,
          base_points: pt4ToJson(l.base_pt4),
          multiplier: l.multiplier,
          rules_applied: l.rules_applied,
          points: pt4ToJson(l.points_pt4),
        })),
        bonuses: earn.bonuses.map((b) => ({
          rule_id: b.rule_id,
          line_index: b.line_index,
          points: pt4ToJson(b.points_pt4),
        })),
      })),
    };
  } catch (e) {
    if (e instanceof EventRejected)
      throw new AppError(e.problem.code, e.problem.message, { field: e.problem.field });
    throw e;
  }
}
