import { verifyLedger } from '../services/verify.ts';
import { withStore, type CliEnv } from './context.ts';
import { EXIT_FAILURE, EXIT_OK } from './errors.ts';

/** `pointpool verify`: re-derives every ledger invariant from the raw rows. */
export async function verifyCommand(env: CliEnv): Promise<number> {
  return withStore(
    env,
    async ({ store }) => {
      const report = await verifyLedger(store.db);
      for (const c of report.checks) process.stdout.write(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}\n`);
      const failed = report.checks.filter((c) => !c.ok).length;
      process.stdout.write(
        report.ok
          ? `ledger ok (${report.checks.length} checks, ${store.describe})\n`
          : `ledger NOT ok: ${failed} check(s) failed\n`,
      );
      return report.ok ? EXIT_OK : EXIT_FAILURE;
    },
    { existing: true },
  );
}
