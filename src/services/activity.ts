import type { Kysely } from 'kysely';
import { pt4ToJson } from '../domain/points.ts';
import { AppError } from '../errors.ts';
import type { DB } from '../store/schema.ts';
import type { Ctx } from './context.ts';
import { decodeCursor, DEFAULT_PAGE_SIZE, encodeCursor, MAX_PAGE_SIZE, type Page } from './paging.ts';

// GET /v1/members/{id}/activity: the member's ledger entries, newest first. An entry is the
// member's when it posts to one of their accounts (a transfer posts to two members) or names
// them as its member. Each item carries the points it moved per program (signed, from the
// member's postings), its lot effects (the allocations on the member's lots and the lots it
// created) and what caused it (event, request, reference). Keyset-paged by entry id.

export interface ActivityItem {
  entry_id: string;
  kind: string;
  at: string;
  programs: string[];
  points: { program_id: string; points: number; available: number; pending: number; held: number }[];
  lot_effects: {
    lot_id: string;
    kind: string;
    program_id: string;
    issuing_brand_id: string;
    points: number;
    value_common: string | null;
  }[];
  source: {
    event_id: string | null;
    request_id: string | null;
    ref_type: string | null;
    ref_id: string | null;
    corrects_entry_id: string | null;
  };
  detail: Record<string, unknown>;
}

export async function listActivity(
  ctx: Ctx,
  member_id: string,
  q: { cursor?: string | undefined; limit?: number | undefined },
): Promise<Page<ActivityItem> & { member_id: string }> {
  const limit = Math.min(Math.max(q.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
  const before = q.cursor ? decodeCursor(q.cursor) : null;
  const member = await ctx.db
    .selectFrom('members')
    .select('id')
    .where('id', '=', member_id)
    .executeTakeFirst();
  if (!member) throw new AppError('MEMBER_NOT_FOUND', undefined, { member_id });

  let viaPostings = ctx.db
    .selectFrom('postings as p')
    .innerJoin('accounts as a', 'a.id', 'p.account_id')
    .select('p.entry_id as id')
    .where('a.owner_id', '=', member_id)
    .where('a.kind', 'like', 'member_%');
  let viaEntries = ctx.db.selectFrom('entries').select('id').where('member_id', '=', member_id);
  if (before !== null) {
    viaPostings = viaPostings.where('p.entry_id', '<', before);
    viaEntries = viaEntries.where('id', '<', before);
  }
  const entries = await ctx.db
    .selectFrom('entries')
    .select([
      'id',
      'kind',
      'at',
      'event_id',
      'request_id',
      'ref_type',
      'ref_id',
      'corrects_entry_id',
      'detail',
    ])
    .where('id', 'in', viaPostings.union(viaEntries))
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute();
  const page = entries.slice(0, limit);
  const ids = page.map((e) => e.id);
  const [postings, effects] = await Promise.all([
    memberPostings(ctx.db, member_id, ids),
    lotEffects(ctx.db, member_id, ids),
  ]);
  return {
    member_id,
    data: page.map((e) => {
      const points = postings.get(e.id) ?? [];
      return {
        entry_id: String(e.id),
        kind: e.kind,
        at: e.at.toISOString(),
        programs: [
          ...new Set([
            ...points.map((p) => p.program_id),
            ...(effects.get(e.id) ?? []).map((l) => l.program_id),
          ]),
        ].sort(),
        points,
        lot_effects: effects.get(e.id) ?? [],
        source: {
          event_id: e.event_id,
          request_id: e.request_id,
          ref_type: e.ref_type,
          ref_id: e.ref_id,
          corrects_entry_id: e.corrects_entry_id === null ? null : String(e.corrects_entry_id),
        },
        detail: summarize(e.kind, e.detail),
      };
    }),
    next_cursor: entries.length > limit && page.length > 0 ? encodeCursor(page[page.length - 1]!.id) : null,
  };
}

type ProgramPoints = ActivityItem['points'][number];

/** Per entry and program, what the entry did to the member's accounts (net, and per account). */
async function memberPostings(
  db: Kysely<DB>,
  member_id: string,
  entry_ids: readonly bigint[],
): Promise<Map<bigint, ProgramPoints[]>> {
  const out = new Map<bigint, ProgramPoints[]>();
  if (entry_ids.length === 0) return out;
  const rows = await db
    .selectFrom('postings as p')
    .innerJoin('accounts as a', 'a.id', 'p.account_id')
    .select(['p.entry_id', 'p.program_id', 'a.kind', 'p.amount_pt4'])
    .where('p.entry_id', 'in', entry_ids)
    .where('a.owner_id', '=', member_id)
    .where('a.kind', 'like', 'member_%')
    .orderBy('p.entry_id')
    .orderBy('p.program_id')
    .execute();
  const sums = new Map<
    bigint,
    Map<string, { total: bigint; available: bigint; pending: bigint; held: bigint }>
  >();
  for (const r of rows) {
    const byProgram =
      sums.get(r.entry_id) ??
      new Map<string, { total: bigint; available: bigint; pending: bigint; held: bigint }>();
    const s = byProgram.get(r.program_id) ?? { total: 0n, available: 0n, pending: 0n, held: 0n };
    s.total += r.amount_pt4;
    if (r.kind === 'member_available') s.available += r.amount_pt4;
    else if (r.kind === 'member_pending') s.pending += r.amount_pt4;
    else if (r.kind === 'member_held') s.held += r.amount_pt4;
    byProgram.set(r.program_id, s);
    sums.set(r.entry_id, byProgram);
  }
  for (const [entry_id, byProgram] of sums) {
    out.set(
      entry_id,
      [...byProgram].map(([program_id, s]) => ({
        program_id,
        points: pt4ToJson(s.total),
        available: pt4ToJson(s.available),
        pending: pt4ToJson(s.pending),
        held: pt4ToJson(s.held),
      })),
    );
  }
  return out;
}

type LotEffect = ActivityItem['lot_effects'][number];

/** The entries' allocations on the member's lots, and the lots they created for the member (kind `award`). */
async function lotEffects(
  db: Kysely<DB>,
  member_id: string,
  entry_ids: readonly bigint[],
): Promise<Map<bigint, LotEffect[]>> {
  const out = new Map<bigint, LotEffect[]>();
  if (entry_ids.length === 0) return out;
  const [created, allocations] = await Promise.all([
    db
      .selectFrom('lots')
      .select(['id', 'source_entry_id', 'program_id', 'issuing_brand_id', 'points_pt4'])
      .where('source_entry_id', 'in', entry_ids)
      .where('member_id', '=', member_id)
      .orderBy('id')
      .execute(),
    db
      .selectFrom('lot_allocations as la')
      .innerJoin('lots as l', 'l.id', 'la.lot_id')
      .select([
        'la.entry_id',
        'la.lot_id',
        'la.kind',
        'la.program_id',
        'la.issuing_brand_id',
        'la.points_pt4',
        'la.value_common',
      ])
      .where('la.entry_id', 'in', entry_ids)
      .where('l.member_id', '=', member_id)
      .orderBy('la.id')
      .execute(),
  ]);
  const push = (id: bigint, e: LotEffect) => {
    const list = out.get(id);
    if (list) list.push(e);
    else out.set(id, [e]);
  };
  for (const l of created)
    push(l.source_entry_id, {
      lot_id: String(l.id),
      kind: 'award',
      program_id: l.program_id,
      issuing_brand_id: l.issuing_brand_id,
      points: pt4ToJson(l.points_pt4),
      value_common: null,
    });
  for (const a of allocations)
    push(a.entry_id, {
      lot_id: String(a.lot_id),
      kind: a.kind,
      program_id: a.program_id,
      issuing_brand_id: a.issuing_brand_id,
      points: pt4ToJson(a.points_pt4),
      value_common: a.value_common,
    });
  return out;
}

/** The parts of an entry's detail a member or an agent reads; the full explanation stays in the ledger. */
function summarize(kind: string, detail: Record<string, unknown>): Record<string, unknown> {
  const pick = (...keys: string[]) =>
    Object.fromEntries(keys.filter((k) => detail[k] !== undefined).map((k) => [k, detail[k]]));
  switch (kind) {
    case 'accrual': {
      const earn = (detail.earn ?? {}) as Record<string, { rules_applied?: unknown }>;
      return {
        ...pick('store_id'),
        rules_applied: Object.fromEntries(Object.entries(earn).map(([p, e]) => [p, e.rules_applied ?? []])),
      };
    }
    case 'reversal':
      return pick('reversal_of');
    case 'redemption':
    case 'hold':
    case 'capture':
    case 'release':
    case 'redemption_reversal':
      return pick('redemption_id', 'brand_id', 'resolution');
    case 'transfer':
      return pick('transfer_id', 'to_member_id', 'group_transfer');
    case 'adjustment':
      return pick('adjustment_id', 'reason_code', 'note');
    case 'referral_bonus':
      return pick('referred_member_id');
    case 'expiry':
    case 'maturation':
      return pick('as_of');
    default:
      return {};
  }
}
