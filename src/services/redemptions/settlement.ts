import { currencyExponent } from '../../domain/config/fx.ts';
import type { Group } from '../../domain/config/group.ts';
import { ratioFromJson, ratioToJson } from '../../domain/earn/codec.ts';
import { ONE } from '../../domain/decimal.ts';
import { settlementAmounts } from '../../domain/settlement/settle.ts';
import type { Insertable } from 'kysely';
import type { Trx } from '../../ledger/post.ts';
import type { SettlementFlowsTable } from '../../store/schema.ts';
import { deferWrite } from '../../store/write-behind.ts';

// The settlement trail: every spent allocation of a lot issued by brand A at brand B (A ≠ B)
// records "A owes B value × A's reimbursement rate", in the common currency. Reversing a
// redemption records the exact negation of its flows.

const reimbursementRate = (group: Group, issuer: string) =>
  group.programs.get(group.brands.get(issuer)?.program ?? '')?.reimbursement_rate ?? ONE;

/** One spent allocation, as recorded in lot_allocations. */
export interface SpentAllocation {
  readonly program_id: string;
  readonly issuing_brand_id: string;
  readonly points_pt4: bigint;
  readonly value_common?: string | null | undefined;
}

/**
 * Records the flows of the allocations an entry spent (kinds spend and capture). `spent`, when
 * the caller has them, are those allocations in the order they were recorded; otherwise they
 * are read back.
 */
export async function recordSettlement(
  trx: Trx,
  group: Group,
  redemption_id: string,
  redeemer_brand_id: string,
  entry_id: bigint,
  now: Date,
  spent?: readonly SpentAllocation[],
): Promise<void> {
  const allocations =
    spent ??
    (await trx
      .selectFrom('lot_allocations')
      .select(['program_id', 'issuing_brand_id', 'points_pt4', 'value_common'])
      .where('entry_id', '=', entry_id)
      .where('kind', 'in', ['spend', 'capture'])
      .orderBy('id')
      .execute());
  const rows = settlementRows(group, redemption_id, redeemer_brand_id, entry_id, now, allocations);
  if (rows.length > 0) await deferWrite(trx, trx.insertInto('settlement_flows').values(rows));
}

/** The flow rows of the allocations an entry spent, in their order (none within one brand). */
export function settlementRows(
  group: Group,
  redemption_id: string,
  redeemer_brand_id: string,
  entry_id: bigint,
  now: Date,
  allocations: readonly SpentAllocation[],
): Insertable<SettlementFlowsTable>[] {
  const cross = allocations.filter((a) => a.issuing_brand_id !== redeemer_brand_id && a.value_common != null);
  if (cross.length === 0) return [];
  const flows = settlementAmounts(
    cross.map((a) => ({
      issuer_brand_id: a.issuing_brand_id,
      redeemer_brand_id,
      value: ratioFromJson(a.value_common!),
      reimbursement_rate: reimbursementRate(group, a.issuing_brand_id),
      sign: 1 as const,
      points_pt4: a.points_pt4,
    })),
    currencyExponent(group.common_currency),
  );
  return flows.map((f) => {
    const a = cross[f.allocation_index]!;
    return {
      entry_id,
      redemption_id,
      issuer_brand_id: f.issuer_brand_id,
      redeemer_brand_id: f.redeemer_brand_id,
      program_id: a.program_id,
      points_pt4: f.points_pt4,
      value_common: ratioToJson(f.exact_minor),
      amount_minor: f.amount_minor,
      at: now,
      period_id: null,
    };
  });
}

/** Records the negation of a redemption's flows (its reversal). */
export async function reverseSettlement(
  trx: Trx,
  redemption_id: string,
  entry_id: bigint,
  now: Date,
): Promise<void> {
  const flows = await trx
    .selectFrom('settlement_flows')
    .selectAll()
    .where('redemption_id', '=', redemption_id)
    .where('points_pt4', '>', 0n)
    .orderBy('id')
    .execute();
  if (flows.length === 0) return;
  await trx
    .insertInto('settlement_flows')
    .values(
      flows.map((f) => ({
        entry_id,
        redemption_id,
        issuer_brand_id: f.issuer_brand_id,
        redeemer_brand_id: f.redeemer_brand_id,
        program_id: f.program_id,
        points_pt4: -f.points_pt4,
        value_common: ratioToJson({
          num: -ratioFromJson(f.value_common).num,
          den: ratioFromJson(f.value_common).den,
        }),
        amount_minor: -f.amount_minor,
        at: now,
        period_id: null,
      })),
    )
    .execute();
}
