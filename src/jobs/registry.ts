import type { Ctx } from '../services/context.ts';
import { runExpire } from './expire.ts';
import { runMature } from './mature.ts';
import { runReleaseHolds } from './release-holds.ts';
import { runTiers } from './tiers.ts';
import type { JobProgress } from './batch.ts';

export type JobResult = Record<string, unknown>;
export type Job = (ctx: Ctx, as_of: Date, onProgress?: (p: JobProgress) => void) => Promise<JobResult>;

// Order matters for the scheduler: holds are released before lots expire (a released point of an
// expired lot then expires in the same pass), and points mature before tiers are evaluated.
export const JOBS: Readonly<Record<string, Job>> = {
  'release-holds': runReleaseHolds,
  mature: runMature,
  expire: runExpire,
  tiers: runTiers,
};

export const JOB_NAMES = Object.keys(JOBS);
