import { EARLIEST_INSTANT, EARLIEST_INSTANT_MS, parseRfc3339 } from '../domain/timestamp.ts';
import { liabilityReport } from '../services/reports/liability.ts';
import { exportPeriodCsv } from '../services/settlement/csv.ts';
import { closePeriod } from '../services/settlement/periods.ts';
import { CLI_ACTOR, withStore, type CliEnv } from './context.ts';
import { CliError, EXIT_OK, EXIT_USAGE } from './errors.ts';

// Finance's commands: close a settlement period, export a statement for the accounting system,
// and the points liability report. They act on the store directly, like `verify`.

function instant(value: string, flag: string): Date {
  // The API's rules: a real RFC 3339 instant, not before the epoch (domain/timestamp.ts).
  const ms = parseRfc3339(value);
  if (ms === null || ms < EARLIEST_INSTANT_MS) {
    throw new CliError(`${flag} must be an RFC 3339 timestamp from ${EARLIEST_INSTANT}, got "${value}"`, {
      exitCode: EXIT_USAGE,
      hint: 'e.g. --to 2026-12-01T00:00:00Z',
    });
  }
  return new Date(ms);
}

const json = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2);

/** `pointpool settle close --to TS`: closes the open period into an immutable statement. */
export async function settleCloseCommand(env: CliEnv, to: string): Promise<number> {
  const at = instant(to, '--to');
  return withStore(
    env,
    async ({ ctx }) => {
      const statement = await closePeriod(ctx, at, CLI_ACTOR);
      process.stdout.write(`${json(statement)}\n`);
      return EXIT_OK;
    },
    { existing: true },
  );
}

/** `pointpool settle export ID > file.csv`: a closed statement as CSV on stdout. */
export async function settleExportCommand(env: CliEnv, id: string): Promise<number> {
  if (!/^\d{1,18}$/.test(id))
    throw new CliError(`the period id must be a number, got "${id}"`, {
      exitCode: EXIT_USAGE,
      hint: 'list periods with GET /v1/settlement/periods',
    });
  return withStore(
    env,
    async ({ ctx }) => {
      process.stdout.write(await exportPeriodCsv(ctx, id));
      return EXIT_OK;
    },
    { existing: true },
  );
}

/** `pointpool report liability [--as-of TS] [--from TS --to TS]`. */
export async function liabilityCommand(
  env: CliEnv,
  flags: { asOf?: string; from?: string; to?: string },
): Promise<number> {
  const as_of = flags.asOf ? instant(flags.asOf, '--as-of') : undefined;
  const from = flags.from ? instant(flags.from, '--from') : undefined;
  const to = flags.to ? instant(flags.to, '--to') : undefined;
  return withStore(
    env,
    async ({ ctx }) => {
      process.stdout.write(`${json(await liabilityReport(ctx, as_of, from, to))}\n`);
      return EXIT_OK;
    },
    { existing: true },
  );
}
