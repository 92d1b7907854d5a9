// The demo: the group in demo/group.yaml, loaded step by step with progress reports. Later
// steps (synthetic event history through the batch endpoint) are added to DEMO_STEPS; each step
// gets the whole service, so it can use the store directly or the app through app.inject().

import { fileURLToPath } from 'node:url';
import type { Service } from '../service.ts';
import { applyConfig } from '../services/config.ts';
import type { Ctx } from '../services/context.ts';
import { readConfigFile } from './config-file.ts';
import { CLI_ACTOR } from './context.ts';
import { historyStep } from './demo-history.ts';
import type { Progress } from './progress.ts';

export const DEMO_CONFIG_PATH = fileURLToPath(new URL('../../demo/group.yaml', import.meta.url));

export interface DemoOptions {
  readonly onProgress?: (p: Progress) => void;
}

export interface DemoResult {
  /** The configuration version the demo applied. */
  readonly version: number;
}

export interface DemoStep {
  readonly name: string;
  /** Runs the step; reports its own progress as (done, total) through `tick`. */
  run(
    service: Service,
    state: { version: number },
    tick: (done: number, total: number) => void,
  ): Promise<void>;
}

/** Applies demo/group.yaml as the next configuration version. */
export async function applyDemoConfig(ctx: Ctx): Promise<{ version: number }> {
  return applyConfig(ctx, readConfigFile(DEMO_CONFIG_PATH), CLI_ACTOR);
}

export const DEMO_STEPS: DemoStep[] = [
  {
    name: 'config',
    async run(service, state, tick) {
      tick(0, 1);
      state.version = (await applyDemoConfig(service.ctx)).version;
      tick(1, 1);
    },
  },
  historyStep,
];

/** Loads the demo into `service`: the configuration, then every further step in order. */
export async function loadDemo(service: Service, opts: DemoOptions = {}): Promise<DemoResult> {
  const state = { version: 0 };
  for (const step of DEMO_STEPS) {
    await step.run(service, state, (done, total) => opts.onProgress?.({ step: step.name, done, total }));
  }
  return { version: state.version };
}
