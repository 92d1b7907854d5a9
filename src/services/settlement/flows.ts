import type { Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';
import type { FlowRow } from './statement.ts';

// Reading settlement flows page by page (keyset on id), so a statement or a range of any size
// is folded without holding every row in memory.

export const FLOW_PAGE_SIZE = 2000;

export type FlowSelection =
  | { readonly kind: 'period'; readonly period_id: bigint }
  | { readonly kind: 'range'; readonly from: Date | null; readonly to: Date };

export async function forEachFlow(
  db: Kysely<DB>,
  sel: FlowSelection,
  fn: (f: FlowRow) => void,
): Promise<number> {
  let after = 0n;
  let count = 0;
  for (;;) {
    let q = db
      .selectFrom('settlement_flows')
      .select([
        'id',
        'entry_id',
        'redemption_id',
        'issuer_brand_id',
        'redeemer_brand_id',
        'program_id',
        'points_pt4',
        'value_common',
        'amount_minor',
        'at',
      ])
      .where('id', '>', after)
      .orderBy('id')
      .limit(FLOW_PAGE_SIZE);
    if (sel.kind === 'period') q = q.where('period_id', '=', sel.period_id);
    else {
      q = q.where('at', '<', sel.to);
      if (sel.from) q = q.where('at', '>=', sel.from);
    }
    const page = await q.execute();
    for (const f of page) fn(f);
    count += page.length;
    if (page.length < FLOW_PAGE_SIZE) return count;
    after = page[page.length - 1]!.id;
  }
}
