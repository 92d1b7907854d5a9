import { sql, type CompiledQuery } from 'kysely';
import { AppError } from '../errors.ts';
import { intArray, textArray } from '../store/pg-arrays.ts';
import type { LotMove } from './entry.ts';
import type { Trx } from './post.ts';

// The lot half of posting: every lot movement of the entries in one guarded UPDATE per chunk
// (moves of the same lot merged), each movement then recorded as an allocation. Built here, sent
// by postEntries as deferred writes; each UPDATE asserts in SQL that every lot it names moved
// (pp_expect, PP002).

export interface LotMoveUpdates {
  /** A lot that would go below zero, or hold more than it has, matches no row: the statement's
   * count check fails and the entry is refused. */
  readonly statements: CompiledQuery[];
  /** The allocation rows recording each movement, in the order of the moves (without entry_id). */
  readonly allocations: Omit<Allocation, 'entry_id'>[];
}

export interface Allocation {
  readonly entry_id: bigint;
  readonly lot_id: bigint;
  readonly program_id: string;
  readonly issuing_brand_id: string;
  readonly kind: string;
  readonly points_pt4: bigint;
  readonly value_common: string | null;
}

interface PerLot {
  remaining: bigint;
  held: bigint;
  state: 'available' | null;
  readonly first: LotMove;
}

const CHUNK = 2_000;

export function lotMoveUpdates(trx: Trx, moves: readonly { move: LotMove }[]): LotMoveUpdates {
  const sorted = [...mergePerLot(moves).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: (typeof sorted)[] = [];
  for (let i = 0; i < sorted.length; i += CHUNK) parts.push(sorted.slice(i, i + CHUNK));
  return {
    statements: parts.map((part) => updateStatement(trx, part)),
    allocations: moves.map(({ move: m }) => ({
      lot_id: m.lot_id,
      program_id: m.program_id,
      issuing_brand_id: m.issuing_brand_id,
      kind: m.kind,
      points_pt4: m.points_pt4,
      value_common: m.value_common ?? null,
    })),
  };
}

// Each lot must be the one its moves describe (member, program, issuer, state before): the
// entry's invariant-2 assertion and settlement trust those fields, so a lot that differs (or
// moves of one lot that disagree) is refused.
function mergePerLot(moves: readonly { move: LotMove }[]): Map<bigint, PerLot> {
  const perLot = new Map<bigint, PerLot>();
  for (const { move: m } of moves) {
    const cur = perLot.get(m.lot_id) ?? { remaining: 0n, held: 0n, state: null, first: m };
    const f = cur.first;
    if (
      f.member_id !== m.member_id ||
      f.program_id !== m.program_id ||
      f.issuing_brand_id !== m.issuing_brand_id
    ) {
      throw new AppError(
        'INVALID_LEDGER_ENTRY',
        `moves of lot ${m.lot_id} disagree on its member, program or issuer`,
        { lot_id: String(m.lot_id) },
      );
    }
    cur.remaining += m.remaining_delta_pt4;
    cur.held += m.held_delta_pt4;
    if (m.state_to) cur.state = m.state_to;
    perLot.set(m.lot_id, cur);
  }
  return perLot;
}

function updateStatement(trx: Trx, part: readonly [bigint, PerLot][]): CompiledQuery {
  const text = (f: (d: PerLot) => string | null) => textArray(part.map(([, d]) => f(d)));
  const int = (f: (d: PerLot) => bigint) => intArray(part.map(([, d]) => f(d)));
  const detail = {
    message: `a lot cannot move as the entry asks (changed under it, or overdrawn): one of ${part.length} from lot ${part[0]![0]}`,
    details: { lot_id: String(part[0]![0]) },
  };
  return sql`
    with moved as (
      update lots l set remaining_pt4 = l.remaining_pt4 + v.rd, held_pt4 = l.held_pt4 + v.hd, state = coalesce(v.st, l.state)
      from unnest(${intArray(part.map(([id]) => id))}::int8[], ${int((d) => d.remaining)}::int8[], ${int((d) => d.held)}::int8[],
                  ${text((d) => d.state)}::text[], ${text((d) => d.first.member_id)}::text[], ${text((d) => d.first.program_id)}::text[],
                  ${text((d) => d.first.issuing_brand_id)}::text[], ${text((d) => d.first.state_from)}::text[])
        as v(id, rd, hd, st, member_id, program_id, issuing_brand_id, state_from)
      where l.id = v.id and l.member_id = v.member_id and l.program_id = v.program_id
        and l.issuing_brand_id = v.issuing_brand_id and l.state = v.state_from
        and l.remaining_pt4 + v.rd >= 0 and l.held_pt4 + v.hd >= 0
        and l.held_pt4 + v.hd <= l.remaining_pt4 + v.rd
      returning l.id)
    select pp_expect((select count(*) from moved) = ${part.length}::int8, 'PP002', ${JSON.stringify(detail)})`.compile(
    trx,
  );
}

/** Allocation rows, in the order given (their ids follow it). */
export function allocationsStatement(trx: Trx, rows: readonly Allocation[]): CompiledQuery {
  const text = (f: (a: Allocation) => string | null) => textArray(rows.map(f));
  const int = (f: (a: Allocation) => bigint) => intArray(rows.map(f));
  return sql`
    insert into lot_allocations (entry_id, lot_id, program_id, issuing_brand_id, kind, points_pt4, value_common)
    select * from unnest(${int((a) => a.entry_id)}::int8[], ${int((a) => a.lot_id)}::int8[], ${text((a) => a.program_id)}::text[],
                         ${text((a) => a.issuing_brand_id)}::text[], ${text((a) => a.kind)}::text[],
                         ${int((a) => a.points_pt4)}::int8[], ${text((a) => a.value_common)}::text[])`.compile(
    trx,
  );
}
