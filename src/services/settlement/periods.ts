import { sql, type Kysely } from 'kysely';
import { formatRatio } from '../../domain/decimal.ts';
import { ratioFromJson } from '../../domain/earn/codec.ts';
import { pt4ToJson } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import type { DB } from '../../store/schema.ts';
import { requireGroup } from '../config.ts';
import type { Actor, Ctx } from '../context.ts';
import { inTransaction } from '../transaction.ts';
import { forEachFlow } from './flows.ts';
import {
  PairAccumulator,
  StatementHasher,
  toStoredLines,
  variances,
  type PairTotal,
  type StoredLines,
} from './statement.ts';

// Settlement periods. POST /v1/settlement/periods {to} closes the open period: every flow not yet
// in a closed period whose `at` is before `to` gets the new period's id, and the statement's
// figures are frozen with a hash over the flows and the figures. Periods are half-open,
// [previous to, to), like every range in the API, so a month closed at 00:00 of the 1st does not
// take a redemption made at that instant. A flow recorded after a close with `at` before that
// close's `to` (a late reversal, or a redemption whose transaction committed after the close)
// has no period yet and falls into the next close: a closed period is never rewritten.

const NO_ACTOR: Actor = { key_id: null, request_id: null };

export interface PeriodSummary {
  id: number;
  from: string | null;
  to: string;
  closed_at: string;
  currency: string;
  flow_count: number;
  hash: string;
}

export interface Statement extends PeriodSummary {
  /** Flows in this period recorded for an instant before `from`: late reversals and the like. */
  late_flow_count: number;
  flows: {
    issuer_brand_id: string;
    redeemer_brand_id: string;
    points: number;
    allocation_count: number;
    allocations_amount_minor: number;
    residual_minor: number;
    amount_minor: number;
    /** The exact pair total in minor units, 10 decimals (display). */
    exact_minor: string;
  }[];
  net: { brand_id: string; amount_minor: number }[];
  payments: PaymentJson[];
  variances: {
    issuer_brand_id: string;
    redeemer_brand_id: string;
    owed_minor: number;
    paid_minor: number;
    variance_minor: number;
    flagged: boolean;
  }[];
}

export interface PaymentJson {
  id: number;
  issuer_brand_id: string;
  redeemer_brand_id: string;
  amount_minor: number;
  currency: string;
  reference: string | null;
  paid_at: string;
  recorded_at: string;
}

/** Closes [last closed `to`, to) into an immutable statement. */
export async function closePeriod(ctx: Ctx, to: Date, actor: Actor = NO_ACTOR): Promise<Statement> {
  const group = await requireGroup(ctx);
  const now = ctx.clock.now();
  // A future `to` would close a period that can still receive flows dated inside it.
  if (to.getTime() > now.getTime())
    throw new AppError('INVALID_RANGE', 'A period cannot end after now', {
      to: to.toISOString(),
      now: now.toISOString(),
    });
  const id = await inTransaction(ctx.db, async (trx) => {
    // One close at a time: the check of the last `to` and the insert must not interleave.
    await sql`lock table settlement_periods in exclusive mode`.execute(trx);
    const last = await trx
      .selectFrom('settlement_periods')
      .select(['id', 'to_at'])
      .orderBy('to_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (last && to.getTime() <= last.to_at.getTime()) {
      throw new AppError(
        'SETTLEMENT_PERIOD_ALREADY_CLOSED',
        `Settlement is closed up to ${last.to_at.toISOString()} (period ${last.id}); close a later \`to\``,
        {
          period_id: Number(last.id),
          closed_to: last.to_at.toISOString(),
          to: to.toISOString(),
        },
      );
    }
    const next = await sql<{ id: bigint }>`select nextval('settlement_periods_id_seq')::int8 as id`.execute(
      trx,
    );
    const period_id = next.rows[0]!.id;
    await trx
      .updateTable('settlement_flows')
      .set({ period_id })
      .where('period_id', 'is', null)
      .where('at', '<', to)
      .execute();
    const header = { id: period_id, from: last?.to_at ?? null, to, currency: group.common_currency };
    const { lines, hash, flow_count } = await freeze(trx, header);
    await trx
      .insertInto('settlement_periods')
      .values({
        id: period_id,
        from_at: header.from,
        to_at: to,
        closed_at: now,
        closed_by: actor.key_id,
        currency: header.currency,
        flow_count,
        hash,
        lines: JSON.stringify(lines) as never,
      })
      .execute();
    return period_id;
  });
  return getStatement(ctx, id);
}

/** Totals, lines and hash of a period's flows, recomputed from the rows (close and verify). */
export async function freeze(
  db: Kysely<DB>,
  header: { id: bigint; from: Date | null; to: Date; currency: string },
): Promise<{ pairs: PairTotal[]; lines: StoredLines; hash: string; flow_count: number }> {
  const acc = new PairAccumulator();
  const hasher = new StatementHasher(header);
  const flow_count = await forEachFlow(db, { kind: 'period', period_id: header.id }, (f) => {
    acc.add(f);
    hasher.flow(f);
  });
  const pairs = acc.totals();
  const lines = toStoredLines(pairs);
  return { pairs, lines, hash: hasher.finish(lines), flow_count };
}

const summary = (p: {
  id: bigint;
  from_at: Date | null;
  to_at: Date;
  closed_at: Date;
  currency: string;
  flow_count: number;
  hash: string;
}): PeriodSummary => ({
  id: Number(p.id),
  from: p.from_at?.toISOString() ?? null,
  to: p.to_at.toISOString(),
  closed_at: p.closed_at.toISOString(),
  currency: p.currency,
  flow_count: p.flow_count,
  hash: p.hash,
});

export const MAX_PERIODS_PAGE = 500;

/** Closed periods, newest first; `before` is a period id (keyset paging). */
export async function listPeriods(
  ctx: Ctx,
  limit = 100,
  before?: number,
): Promise<{ data: PeriodSummary[]; next_before: number | null }> {
  const n = Math.min(Math.max(1, limit), MAX_PERIODS_PAGE);
  let q = ctx.db
    .selectFrom('settlement_periods')
    .select(['id', 'from_at', 'to_at', 'closed_at', 'currency', 'flow_count', 'hash'])
    .orderBy('id', 'desc')
    .limit(n + 1);
  if (before !== undefined) q = q.where('id', '<', BigInt(before));
  const rows = await q.execute();
  const page = rows.slice(0, n).map(summary);
  return { data: page, next_before: rows.length > n ? page[page.length - 1]!.id : null };
}

export async function requirePeriod(ctx: Ctx, id: bigint) {
  const p = await ctx.db.selectFrom('settlement_periods').selectAll().where('id', '=', id).executeTakeFirst();
  if (!p)
    throw new AppError('SETTLEMENT_PERIOD_NOT_FOUND', `No settlement period ${id}`, {
      period_id: Number(id),
    });
  return p;
}

export const paymentJson = (p: {
  id: bigint;
  issuer_brand_id: string;
  redeemer_brand_id: string;
  amount_minor: bigint;
  currency: string;
  reference: string | null;
  paid_at: Date;
  recorded_at: Date;
}): PaymentJson => ({
  id: Number(p.id),
  issuer_brand_id: p.issuer_brand_id,
  redeemer_brand_id: p.redeemer_brand_id,
  amount_minor: Number(p.amount_minor),
  currency: p.currency,
  reference: p.reference,
  paid_at: p.paid_at.toISOString(),
  recorded_at: p.recorded_at.toISOString(),
});

/** The statement: frozen figures from the close, plus the payments recorded since and their variances. */
export async function getStatement(ctx: Ctx, id: bigint): Promise<Statement> {
  const p = await requirePeriod(ctx, id);
  const lines = p.lines as unknown as StoredLines;
  const pairs: PairTotal[] = lines.pairs.map((l) => ({
    issuer_brand_id: l.issuer_brand_id,
    redeemer_brand_id: l.redeemer_brand_id,
    points_pt4: BigInt(l.points_pt4),
    allocation_count: l.allocation_count,
    allocations_amount_minor: BigInt(l.allocations_amount_minor),
    exact_minor: ratioFromJson(l.exact_minor),
    amount_minor: BigInt(l.amount_minor),
    residual_minor: BigInt(l.residual_minor),
  }));
  const payments = await ctx.db
    .selectFrom('settlement_payments')
    .selectAll()
    .where('period_id', '=', id)
    .orderBy('id')
    .limit(10_000)
    .execute();
  const late = p.from_at
    ? await ctx.db
        .selectFrom('settlement_flows')
        .select((eb) => eb.fn.countAll<bigint | string>().as('n'))
        .where('period_id', '=', id)
        .where('at', '<', p.from_at)
        .executeTakeFirstOrThrow()
    : { n: '0' };
  return {
    ...summary(p),
    late_flow_count: Number(late.n),
    flows: pairs.map((x) => ({
      issuer_brand_id: x.issuer_brand_id,
      redeemer_brand_id: x.redeemer_brand_id,
      points: pt4ToJson(x.points_pt4),
      allocation_count: x.allocation_count,
      allocations_amount_minor: Number(x.allocations_amount_minor),
      residual_minor: Number(x.residual_minor),
      amount_minor: Number(x.amount_minor),
      exact_minor: formatRatio(x.exact_minor, 10),
    })),
    net: lines.net.map((n) => ({ brand_id: n.brand_id, amount_minor: Number(n.amount_minor) })),
    payments: payments.map(paymentJson),
    variances: variances(pairs, payments).map((v) => ({
      issuer_brand_id: v.issuer_brand_id,
      redeemer_brand_id: v.redeemer_brand_id,
      owed_minor: Number(v.owed_minor),
      paid_minor: Number(v.paid_minor),
      variance_minor: Number(v.variance_minor),
      flagged: v.flagged,
    })),
  };
}
