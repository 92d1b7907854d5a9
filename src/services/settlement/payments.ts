import { AppError } from '../../errors.ts';
import { requireGroup } from '../config.ts';
import type { Actor, Ctx } from '../context.ts';
import { claimIdempotencyKey, requestHash, storeOutcome } from '../idempotency.ts';
import { inTransaction } from '../transaction.ts';
import { paymentJson, requirePeriod } from './periods.ts';

// POST /v1/settlement/periods/{id}/payments: what one brand actually paid another against a
// closed statement. Payments never change the statement's figures; the statement shows, per
// pair, paid − owed and flags any variance over half a minor unit (statement.ts). A negative
// amount records money going back (a pair whose reversals outweighed its redemptions).

export interface PaymentRequest {
  readonly issuer_brand_id: string;
  readonly redeemer_brand_id: string;
  readonly amount_minor: number;
  readonly currency?: string | undefined;
  readonly reference?: string | undefined;
  readonly paid_at?: string | undefined;
  readonly idempotency_key?: string | undefined;
}

const IDEMPOTENCY_SCOPE = 'settlement_payment';

export async function recordPayment(
  ctx: Ctx,
  period_id: bigint,
  req: PaymentRequest,
  actor: Actor,
): Promise<{ http_status: number; body: Record<string, unknown> }> {
  const group = await requireGroup(ctx);
  const period = await requirePeriod(ctx, period_id);
  for (const field of ['issuer_brand_id', 'redeemer_brand_id'] as const) {
    if (!group.brands.has(req[field]))
      throw new AppError('UNKNOWN_BRAND', `No brand ${req[field]}`, { field, brand_id: req[field] });
  }
  if (req.issuer_brand_id === req.redeemer_brand_id)
    throw new AppError('INVALID_PAYMENT', 'A brand does not pay itself', { field: 'redeemer_brand_id' });
  if (!Number.isSafeInteger(req.amount_minor) || req.amount_minor === 0) {
    throw new AppError('INVALID_AMOUNT', 'amount_minor is a non-zero integer number of minor units', {
      field: 'amount_minor',
    });
  }
  if (req.currency !== undefined && req.currency !== period.currency) {
    throw new AppError('CURRENCY_MISMATCH', `Period ${period_id} settles in ${period.currency}`, {
      field: 'currency',
      currency: period.currency,
    });
  }
  const now = ctx.clock.now();
  return inTransaction(ctx.db, async (trx) => {
    if (req.idempotency_key) {
      const replay = await claimIdempotencyKey(
        trx,
        IDEMPOTENCY_SCOPE,
        `${period_id}:${req.idempotency_key}`,
        requestHash(req),
        now,
      );
      if (replay) return replay;
    }
    const row = await trx
      .insertInto('settlement_payments')
      .values({
        period_id,
        issuer_brand_id: req.issuer_brand_id,
        redeemer_brand_id: req.redeemer_brand_id,
        amount_minor: BigInt(req.amount_minor),
        currency: period.currency,
        reference: req.reference ?? null,
        paid_at: req.paid_at ? new Date(req.paid_at) : now,
        recorded_at: now,
        key_id: actor.key_id,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const body: Record<string, unknown> = { period_id: Number(period_id), ...paymentJson(row) };
    if (req.idempotency_key)
      await storeOutcome(trx, IDEMPOTENCY_SCOPE, `${period_id}:${req.idempotency_key}`, 201, body);
    return { http_status: 201, body };
  });
}
