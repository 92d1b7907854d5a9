// The pointpool command line. Every command honours DATABASE_URL (PostgreSQL) or --data DIR
// (the embedded store). Exit codes: 0 ok, 1 failure, 2 usage.

import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { applyCommand } from './apply.ts';
import { cliEnv, DEFAULT_DATA_DIR, type StoreFlags } from './context.ts';
import { demoCommand } from './demo-command.ts';
import { EXIT_OK, EXIT_USAGE, report } from './errors.ts';
import { createKeyCommand } from './keys.ts';
import { migrateCommand } from './migrate.ts';
import { serveCommand, type ServeFlags } from './serve.ts';
import { liabilityCommand, settleCloseCommand, settleExportCommand } from './settle.ts';
import { verifyCommand } from './verify.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const dataOption = () =>
  new Option('--data <dir>', 'embedded store directory, used when DATABASE_URL is not set').default(
    DEFAULT_DATA_DIR,
  );

/** Runs a command body, turning its result or error into the process exit code. */
function run<A extends unknown[]>(body: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      process.exitCode = await body(...args);
    } catch (e) {
      process.exitCode = report(e, { databaseUrl: process.env.DATABASE_URL });
    }
  };
}

function buildProgram(): Command {
  const program = new Command('pointpool')
    .description(
      'Cross-brand loyalty points ledger. Uses PostgreSQL when DATABASE_URL is set, else the embedded store in --data.',
    )
    .version(pkg.version)
    .exitOverride()
    .showHelpAfterError('(run `pointpool --help` for usage)');

  program
    .command('serve')
    .description(
      'start the HTTP API (loads the demo group into an empty store; prints the URL and admin key)',
    )
    .option('--port <n>', 'port to listen on (env PORT, default 8080; 0 picks a free one)')
    .option('--host <h>', 'address to bind (env HOST, default 0.0.0.0)')
    .option('--no-demo', 'do not load the demo group into an empty store')
    .addOption(dataOption())
    .action(run(async (flags: ServeFlags) => serveCommand(flags)));

  program
    .command('migrate')
    .description('apply pending database migrations and name them')
    .addOption(dataOption())
    .action(run(async (flags: StoreFlags) => migrateCommand(cliEnv(flags))));

  program
    .command('apply')
    .description('validate a configuration file (YAML or JSON) and store it as the next version')
    .argument('<file>', 'the group configuration, e.g. demo/group.yaml')
    .addOption(dataOption())
    .action(run(async (file: string, flags: StoreFlags) => applyCommand(cliEnv(flags), file)));

  program
    .command('verify')
    .description('check every ledger invariant against the stored rows (exit 1 if any fails)')
    .addOption(dataOption())
    .action(run(async (flags: StoreFlags) => verifyCommand(cliEnv(flags))));

  program
    .command('demo')
    .description('load the demo group (demo/group.yaml) into the store')
    .addOption(dataOption())
    .action(run(async (flags: StoreFlags) => demoCommand(cliEnv(flags))));

  const keys = program.command('keys').description('manage API keys');
  keys
    .command('create')
    .description('create an API key and print its secret (shown only once)')
    .requiredOption('--scope <scope>', 'admin, read or brand:<brand_id>')
    .requiredOption('--name <name>', 'who or what the key is for')
    .addOption(dataOption())
    .action(
      run(async (flags: StoreFlags & { scope: string; name: string }) =>
        createKeyCommand(cliEnv(flags), flags),
      ),
    );

  const settle = program.command('settle').description('intercompany settlement');
  settle
    .command('close')
    .description('close the open settlement period up to --to into an immutable statement')
    .requiredOption('--to <timestamp>', 'end of the period (exclusive), RFC 3339')
    .addOption(dataOption())
    .action(run(async (flags: StoreFlags & { to: string }) => settleCloseCommand(cliEnv(flags), flags.to)));
  settle
    .command('export')
    .description('print a closed period statement as CSV (pointpool settle export ID > file.csv)')
    .argument('<id>', 'the period id')
    .addOption(dataOption())
    .action(run(async (id: string, flags: StoreFlags) => settleExportCommand(cliEnv(flags), id)));

  const reports = program.command('report').description('finance reports');
  reports
    .command('liability')
    .description('outstanding points per program and issuing brand, valued in the common currency')
    .option('--as-of <timestamp>', 'the instant to value at (default now)')
    .option('--from <timestamp>', 'start of the activity range')
    .option('--to <timestamp>', 'end of the activity range')
    .addOption(dataOption())
    .action(
      run(async (flags: StoreFlags & { asOf?: string; from?: string; to?: string }) =>
        liabilityCommand(cliEnv(flags), flags),
      ),
    );

  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    // --help and --version end with exit code 0; every other parse problem is a usage error.
    if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    else process.exitCode = report(e, { databaseUrl: process.env.DATABASE_URL });
  }
}

await main(process.argv);
