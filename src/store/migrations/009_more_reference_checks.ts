import type { Kysely } from 'kysely';
import { checkPerStatement } from './008_reference_checks.ts';

// Three more references to entries checked per statement (migration 008 says how and why): one
// row each per redemption, cross-brand flow and transfer. None of these columns is ever updated.

export const CHECKED_REFERENCES = [
  ['redemptions', 'entry_id', 'entries'],
  ['settlement_flows', 'entry_id', 'entries'],
  ['transfers', 'entry_id', 'entries'],
] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const reference of CHECKED_REFERENCES) await checkPerStatement(db, reference);
}
