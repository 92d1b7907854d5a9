import { AppError } from '../errors.ts';
import { pgCode } from './post.ts';

// The ledger's deferred balance and lot moves check their own row counts in SQL (pp_expect,
// migration 007) and fail the statement that carries them (often the commit) with these states;
// their message is the error's JSON. Whoever runs the transaction maps them back
// (services/transaction.ts does for every command).
// (PP003, a posting without its account, is a bug and stays an internal error.)
const EXPECTATIONS: Record<string, 'INSUFFICIENT_POINTS' | 'CONCURRENT_UPDATE'> = {
  PP001: 'INSUFFICIENT_POINTS',
  PP002: 'CONCURRENT_UPDATE',
};

export function ledgerExpectation(e: unknown): AppError | null {
  const code = pgCode(e);
  const app = code ? EXPECTATIONS[code] : undefined;
  if (!app) return null;
  let parsed: { message?: string; details?: Record<string, unknown> } = {};
  try {
    parsed = JSON.parse((e as Error).message) as typeof parsed;
  } catch {
    // The message is ours; if it is not JSON the code alone still says what happened.
  }
  return new AppError(app, parsed.message, parsed.details);
}
