// Account kinds of the double-entry ledger. Every entry's postings sum to zero per program.
//
// Member accounts hold a running balance row, updated in the entry's transaction with a
// conditional upsert, because their balance is what a redemption must never overdraw.
// System accounts (issuance, redemption, breakage …) carry no running balance: every accrual
// at a brand would otherwise update one hot row and serialize the whole brand. Their balance is
// the sum of their postings, computed where it is read (reports, verify).

export const MEMBER_KINDS = ['member_available', 'member_pending', 'member_held'] as const;
export type MemberAccountKind = (typeof MEMBER_KINDS)[number];

export const SYSTEM_KINDS = [
  'issuance', // owner: issuing brand; debited when points are awarded
  'redemption', // owner: redeeming brand; credited when points are spent there
  'breakage', // owner: issuing brand; credited when points expire
  'writeoff', // owner: issuing brand; absorbs reversal shortfalls up to the program's limit
  'transfer', // owner: group; clearing account of member-to-member transfers
  'conversion', // owner: group; clearing account when points change program (group transfers)
  'adjustment', // owner: group; manual credits and debits
] as const;
export type SystemAccountKind = (typeof SYSTEM_KINDS)[number];

export type AccountKind = MemberAccountKind | SystemAccountKind;

export interface AccountRef {
  readonly program_id: string;
  readonly kind: AccountKind;
  readonly owner_id: string;
}

export const isMemberKind = (k: string): k is MemberAccountKind => k.startsWith('member_');

export const accountKey = (a: AccountRef): string => `${a.program_id}\u0000${a.kind}\u0000${a.owner_id}`;

export const memberAccount = (
  program_id: string,
  member_id: string,
  kind: MemberAccountKind,
): AccountRef => ({
  program_id,
  kind,
  owner_id: member_id,
});

export const systemAccount = (program_id: string, kind: SystemAccountKind, owner_id: string): AccountRef => ({
  program_id,
  kind,
  owner_id,
});
