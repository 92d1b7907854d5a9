import { validateConfig } from '../domain/config/validate.ts';
import { isAppError } from '../errors.ts';
import { applyConfig } from '../services/config.ts';
import { readConfigFile } from './config-file.ts';
import { CLI_ACTOR, withStore, type CliEnv } from './context.ts';
import { EXIT_FAILURE, EXIT_OK } from './errors.ts';

/** `pointpool apply FILE`: validates the document and stores it as the next version. */
export async function applyCommand(env: CliEnv, file: string): Promise<number> {
  // Read and validate before opening the store, so a mistake in the file is reported at once.
  const doc = readConfigFile(file);
  const checked = validateConfig(doc);
  if (!checked.ok) return printProblems(file, checked.errors);
  return withStore(env, async ({ ctx }) => {
    try {
      const { version } = await applyConfig(ctx, doc, CLI_ACTOR);
      process.stdout.write(`${JSON.stringify({ version })}\n`);
      return EXIT_OK;
    } catch (e) {
      if (!isAppError(e) || e.code !== 'INVALID_CONFIG') throw e;
      return printProblems(file, (e.details.problems ?? []) as Problem[]);
    }
  });
}

interface Problem {
  readonly path: string;
  readonly message: string;
}

function printProblems(file: string, problems: readonly Problem[]): number {
  const lines = [
    `error: ${file} is not a valid configuration (${problems.length} problem(s)); nothing was stored:`,
    ...problems.map((p) => `${p.path || '/'}: ${p.message}`),
    '  → fix each path above and run `pointpool apply` again',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  return EXIT_FAILURE;
}
