import { sql } from 'kysely';
import { TAKING_KINDS } from './entry.ts';
import type { Trx } from './post.ts';

/** TAKING_KINDS as an SQL list, for `kind in (${TAKING_KINDS_SQL})`. */
export const TAKING_KINDS_SQL = sql.join(TAKING_KINDS.map((k) => sql.lit(k)));

// Reads the ledger's current state inside a command's transaction (after lockMembers).

export interface MemberProgramState {
  available_pt4: bigint;
  floor_pt4: bigint;
  pending_pt4: bigint;
  held_pt4: bigint;
}

export async function memberState(trx: Trx, member_id: string): Promise<Map<string, MemberProgramState>> {
  return memberStateOf(await memberStateQuery(trx, member_id).execute());
}

/** The query behind memberState, to send together with others (store/write-behind.ts). */
export const memberStateQuery = (trx: Trx, member_id: string) =>
  trx
    .selectFrom('accounts')
    .select(['program_id', 'kind', 'balance_pt4', 'floor_pt4'])
    .where('owner_id', '=', member_id)
    .where('kind', 'like', 'member_%');

export function memberStateOf(
  rows: readonly { program_id: string; kind: string; balance_pt4: bigint; floor_pt4: bigint }[],
): Map<string, MemberProgramState> {
  const out = new Map<string, MemberProgramState>();
  for (const r of rows) {
    const s = out.get(r.program_id) ?? { available_pt4: 0n, floor_pt4: 0n, pending_pt4: 0n, held_pt4: 0n };
    if (r.kind === 'member_available') {
      s.available_pt4 = r.balance_pt4;
      s.floor_pt4 = r.floor_pt4;
    } else if (r.kind === 'member_pending') s.pending_pt4 = r.balance_pt4;
    else if (r.kind === 'member_held') s.held_pt4 = r.balance_pt4;
    out.set(r.program_id, s);
  }
  return out;
}

export interface OpenLot {
  id: bigint;
  program_id: string;
  member_id: string;
  issuing_brand_id: string;
  points_pt4: bigint;
  remaining_pt4: bigint;
  held_pt4: bigint;
  state: 'pending' | 'available';
  awarded_at: Date;
  available_at: Date;
  expires_at: Date | null;
  source_event_id: string | null;
}

/** The member's lots with points left, optionally in some programs only. */
export async function openLots(
  trx: Trx,
  member_id: string,
  program_ids?: readonly string[],
): Promise<OpenLot[]> {
  if (program_ids?.length === 0) return [];
  let q = trx
    .selectFrom('lots')
    .select([
      'id',
      'program_id',
      'member_id',
      'issuing_brand_id',
      'points_pt4',
      'remaining_pt4',
      'held_pt4',
      'state',
      'awarded_at',
      'available_at',
      'expires_at',
      'source_event_id',
    ])
    .where('member_id', '=', member_id)
    .where('open', '=', true);
  if (program_ids) q = q.where('program_id', 'in', program_ids);
  return q.orderBy('id').execute();
}
