import { withService, type CliEnv } from './context.ts';
import { loadDemo } from './demo.ts';
import { EXIT_OK } from './errors.ts';
import { progressBar } from './progress.ts';

/** `pointpool demo`: loads the demo into the store, with a progress bar on stderr. */
export async function demoCommand(env: CliEnv): Promise<number> {
  return withService(env, {}, async (service) => {
    const bar = progressBar();
    try {
      const { version } = await loadDemo(service, { onProgress: (p) => bar.update(p) });
      bar.finish();
      process.stdout.write(`demo loaded on ${service.store.describe}: configuration version ${version}\n`);
    } finally {
      bar.finish();
    }
    return EXIT_OK;
  });
}
