import { Type } from '@sinclair/typebox';
import { AppError } from '../../errors.ts';
import { JOB_NAMES, JOBS } from '../../jobs/registry.ts';
import type { App } from '../app.ts';
import { absentBodyAsEmpty, errorResponses, Timestamp } from '../schemas.ts';

export default async function jobRoutes(app: App): Promise<void> {
  app.post(
    '/v1/jobs/:name/run',
    {
      config: { scope: 'admin', action: 'job.run' },
      schema: {
        tags: ['jobs'],
        summary: `Run a job now (${JOB_NAMES.join(', ')}) as of an instant; idempotent, returns its counts`,
        params: Type.Object({ name: Type.String({ maxLength: 40 }) }),
        body: Type.Object({ as_of: Type.Optional(Timestamp) }, { additionalProperties: false }),
        response: { ...errorResponses('NOT_FOUND', 'NO_CONFIG') },
      },
      preValidation: absentBodyAsEmpty, // no body: as of now
    },
    async (req) => {
      const job = Object.hasOwn(JOBS, req.params.name) ? JOBS[req.params.name] : undefined;
      if (!job)
        throw new AppError('NOT_FOUND', `No job ${req.params.name}; jobs are ${JOB_NAMES.join(', ')}`, {
          field: 'name',
        });
      const as_of = req.body.as_of ? new Date(req.body.as_of) : app.ctx.clock.now();
      return job(app.ctx, as_of);
    },
  );
}
