import { AppError } from '../errors.ts';
import { isMemberKind, type AccountRef } from './accounts.ts';

// The shape of one ledger entry as services build it, and the assertions that hold for every
// entry before any SQL runs. The database enforces the same facts again (constraints and the
// balance check on each postings statement); asserting here names the bug in the service that
// built the entry.

export type EntryKind =
  | 'accrual'
  | 'reversal'
  | 'redemption'
  | 'hold'
  | 'capture'
  | 'release'
  | 'redemption_reversal'
  | 'transfer'
  | 'expiry'
  | 'maturation'
  | 'adjustment'
  | 'referral_bonus'
  | 'test';

export interface PostingInput {
  readonly account: AccountRef;
  readonly amount_pt4: bigint;
}

export interface NewLot {
  readonly program_id: string;
  readonly member_id: string;
  readonly issuing_brand_id: string;
  readonly points_pt4: bigint;
  /** What is left after paying down a recorded debt (usually = points_pt4). */
  readonly remaining_pt4: bigint;
  readonly state: 'pending' | 'available';
  readonly awarded_at: Date;
  readonly available_at: Date;
  readonly expires_at: Date | null;
  readonly source_event_id?: string | null;
}

export type LotMoveKind =
  | 'spend'
  | 'hold'
  | 'capture'
  | 'release'
  | 'restore'
  | 'expire'
  | 'reverse'
  | 'transfer_out'
  | 'mature'
  | 'debt_paydown'
  | 'writeoff_recovery'
  | 'adjust';

export interface LotMove {
  readonly lot_id: bigint;
  readonly program_id: string;
  readonly member_id: string;
  readonly issuing_brand_id: string;
  readonly kind: LotMoveKind;
  /** The allocation's size, always > 0; the deltas say what it does to the lot. */
  readonly points_pt4: bigint;
  readonly remaining_delta_pt4: bigint;
  readonly held_delta_pt4: bigint;
  /** Lot state after the move, when it changes (pending → available). */
  readonly state_to?: 'available';
  /** State the lot is in before the move (for the invariant-2 assertion). */
  readonly state_from: 'pending' | 'available';
  /** Exact value in the common currency, as a decimal string, for settlement and statements. */
  readonly value_common?: string | null;
}

/** Allocation kinds that take points out of a lot ('restore' puts them back; hold, release and
 * mature only move them between states). Verify, balances and reports all read lots this way. */
export const TAKING_KINDS: readonly LotMoveKind[] = [
  'spend',
  'capture',
  'expire',
  'reverse',
  'transfer_out',
  'debt_paydown',
  'writeoff_recovery',
  'adjust',
];

/** A change of a member's available-balance floor: negative records a reversal shortfall,
 * positive pays such a debt down. */
export interface FloorMove {
  readonly account: AccountRef;
  readonly delta_pt4: bigint;
}

export interface EntryInput {
  readonly kind: EntryKind;
  readonly member_id?: string | null;
  readonly at: Date;
  readonly event_id?: string | null;
  readonly request_id?: string | null;
  readonly key_id?: string | null;
  readonly corrects_entry_id?: bigint | null;
  readonly ref_type?: string | null;
  readonly ref_id?: string | null;
  readonly detail?: Record<string, unknown>;
  readonly postings: readonly PostingInput[];
  readonly new_lots?: readonly NewLot[];
  readonly lot_moves?: readonly LotMove[];
  readonly floor_moves?: readonly FloorMove[];
}

const MAX_POSTINGS = 1_000;
const MAX_ABS_PT4 = 10n ** 17n; // 10^13 points: far beyond any real balance, far below int8

function invalid(message: string, details: Record<string, unknown> = {}): AppError {
  return new AppError('INVALID_LEDGER_ENTRY', message, details);
}

export function assertEntryInput(input: EntryInput): void {
  if (input.postings.length === 0 && (input.lot_moves ?? []).length === 0)
    throw invalid('an entry needs postings');
  if (input.postings.length > MAX_POSTINGS) throw invalid(`an entry takes at most ${MAX_POSTINGS} postings`);
  if (!(input.at instanceof Date) || Number.isNaN(input.at.getTime()))
    throw invalid('entry time is not a valid date');
  const perProgram = new Map<string, bigint>();
  for (const [i, p] of input.postings.entries()) {
    // Invariant 7: an amount is a bigint, never a binary float.
    if (typeof p.amount_pt4 !== 'bigint')
      throw invalid(`posting ${i}: amount is not an exact integer`, { posting: i });
    if (p.amount_pt4 === 0n) throw invalid(`posting ${i}: amount is zero`, { posting: i });
    if (p.amount_pt4 > MAX_ABS_PT4 || p.amount_pt4 < -MAX_ABS_PT4)
      throw invalid(`posting ${i}: amount out of range`);
    if (!p.account.program_id || !p.account.owner_id) throw invalid(`posting ${i}: account is incomplete`);
    perProgram.set(p.account.program_id, (perProgram.get(p.account.program_id) ?? 0n) + p.amount_pt4);
  }
  // Invariant 1: the entry balances in every program it touches.
  for (const [program, sum] of perProgram) {
    if (sum !== 0n)
      throw invalid(`entry does not balance in ${program} (off by ${sum} pt4)`, { program_id: program });
  }
  assertLotsMatchBalances(input);
}

/**
 * Invariant 2 for the entry's own effect: per (member, program), the change of available +
 * pending + held equals the change of the lots' remaining plus the change of the floor; and
 * pending and held move exactly with pending lots and held amounts.
 */
function assertLotsMatchBalances(input: EntryInput): void {
  const delta = new Map<
    string,
    { account: bigint; lots: bigint; pending: bigint; pendingLots: bigint; held: bigint; heldLots: bigint }
  >();
  const at = (member: string, program: string) => {
    const k = `${member}\u0000${program}`;
    let d = delta.get(k);
    if (!d)
      delta.set(k, (d = { account: 0n, lots: 0n, pending: 0n, pendingLots: 0n, held: 0n, heldLots: 0n }));
    return d;
  };
  for (const p of input.postings) {
    if (!isMemberKind(p.account.kind)) continue;
    const d = at(p.account.owner_id, p.account.program_id);
    d.account += p.amount_pt4;
    if (p.account.kind === 'member_pending') d.pending += p.amount_pt4;
    if (p.account.kind === 'member_held') d.held += p.amount_pt4;
  }
  for (const f of input.floor_moves ?? []) {
    if (f.account.kind !== 'member_available') throw invalid('only an available account has a floor');
    at(f.account.owner_id, f.account.program_id).lots += f.delta_pt4;
  }
  for (const l of input.new_lots ?? []) {
    if (typeof l.points_pt4 !== 'bigint' || l.points_pt4 <= 0n) throw invalid('a lot needs positive points');
    if (l.remaining_pt4 < 0n || l.remaining_pt4 > l.points_pt4)
      throw invalid('a lot remaining is out of range');
    const d = at(l.member_id, l.program_id);
    d.lots += l.remaining_pt4;
    if (l.state === 'pending') d.pendingLots += l.remaining_pt4;
  }
  for (const m of input.lot_moves ?? []) {
    if (m.points_pt4 <= 0n) throw invalid('a lot move needs positive points', { lot_id: String(m.lot_id) });
    const d = at(m.member_id, m.program_id);
    d.lots += m.remaining_delta_pt4;
    d.heldLots += m.held_delta_pt4;
    if (m.state_from === 'pending')
      d.pendingLots += m.state_to === 'available' ? -m.points_pt4 : m.remaining_delta_pt4;
  }
  for (const [key, d] of delta) {
    if (d.account !== d.lots || d.pending !== d.pendingLots || d.held !== d.heldLots) {
      const [member_id, program_id] = key.split('\u0000');
      throw invalid(`entry moves balances and lots apart for ${member_id} in ${program_id}`, {
        member_id,
        program_id,
      });
    }
  }
}
