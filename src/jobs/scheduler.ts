import type { FastifyBaseLogger } from 'fastify';
import type { Ctx } from '../services/context.ts';
import { JOBS } from './registry.ts';

/**
 * Runs every job with as_of = now on a fixed interval. A run that is still going when the next
 * tick comes is not started twice. Several server instances may all schedule: each job claims
 * members with SKIP LOCKED and is idempotent, so they share the work and never double it.
 */
export function startScheduler(ctx: Ctx, log: FastifyBaseLogger, interval_ms: number): () => Promise<void> {
  let running: Promise<void> | null = null;
  const tick = () => {
    if (running) return;
    running = (async () => {
      for (const [name, job] of Object.entries(JOBS)) {
        try {
          const group = await ctx.groups.current();
          if (!group) return;
          const result = await job(ctx, ctx.clock.now());
          log.info({ job: name, result }, 'job run');
        } catch (err) {
          log.error({ err, job: name }, 'job failed; it will run again at the next tick');
        }
      }
    })().finally(() => (running = null));
  };
  const timer = setInterval(tick, interval_ms);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
