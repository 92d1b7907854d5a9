import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import * as m001 from './migrations/001_ledger.ts';
import * as m002 from './migrations/002_activity.ts';
import * as m003 from './migrations/003_settlement.ts';
import * as m004 from './migrations/004_indexes.ts';
import * as m005 from './migrations/005_audit_in_transaction.ts';
import * as m006 from './migrations/006_balances_read.ts';
import * as m007 from './migrations/007_ledger_expect.ts';
import * as m008 from './migrations/008_reference_checks.ts';
import * as m009 from './migrations/009_more_reference_checks.ts';
import * as m010 from './migrations/010_lots_in_place.ts';
import * as m011 from './migrations/011_balance_per_statement.ts';
import * as m012 from './migrations/012_documents_as_json.ts';
import * as m013 from './migrations/013_balances_expired.ts';
import * as m014 from './migrations/014_duplicate_event_ids.ts';
import * as m015 from './migrations/015_postings_sum_of_statement.ts';
import * as m016 from './migrations/016_current_balances_many.ts';

// Migrations are compiled into the program (not discovered on disk) so the same set runs from
// source, from a build, and from an installed package.
const MIGRATIONS: Record<string, Migration> = {
  '001_ledger': m001,
  '002_activity': m002,
  '003_settlement': m003,
  '004_indexes': m004,
  '005_audit_in_transaction': m005,
  '006_balances_read': m006,
  '007_ledger_expect': m007,
  '008_reference_checks': m008,
  '009_more_reference_checks': m009,
  '010_lots_in_place': m010,
  '011_balance_per_statement': m011,
  '012_documents_as_json': m012,
  '013_balances_expired': m013,
  '014_duplicate_event_ids': m014,
  '015_postings_sum_of_statement': m015,
  '016_current_balances_many': m016,
};

class StaticProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return MIGRATIONS;
  }
}

export interface MigrateResult {
  readonly applied: string[];
}

export function migrateToLatest(db: Kysely<unknown>): Promise<MigrateResult> {
  return migrateTo(db, null);
}

/** Applies the migrations up to `last` (its name), or all of them (null). */
export async function migrateTo(db: Kysely<unknown>, last: string | null): Promise<MigrateResult> {
  if (last !== null && !(last in MIGRATIONS)) throw new Error(`no migration named ${last}`);
  const migrator = new Migrator({
    db,
    provider: new StaticProvider(),
    migrationTableName: 'pointpool_migrations',
    migrationLockTableName: 'pointpool_migrations_lock',
  });
  const { error, results } = await (last === null ? migrator.migrateToLatest() : migrator.migrateTo(last));
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(
      `migration ${failed} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`,
      {
        cause: error,
      },
    );
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
