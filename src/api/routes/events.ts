import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { submitBatch } from '../../services/events/batch.ts';
import { listRejections } from '../../services/events/rejections.ts';
import { listReviews } from '../../services/events/reviews.ts';
import { requireGroup } from '../../services/config.ts';
import { simulateEvent } from '../../services/events/simulate.ts';
import { submitSharedEvent } from '../../services/events/shared-accrual.ts';
import { DEFAULT_PAGE_SIZE } from '../../services/paging.ts';
import { actorOf, assertBrand } from '../auth.ts';
import type { App } from '../app.ts';
import { errorResponses, PageQuery, Timestamp } from '../schemas.ts';

export const MAX_BATCH_EVENTS = 1000;

// Events are validated by the service (parseEvent), not by a route schema: a malformed event
// must still be kept and listed as a rejection with its payload, and answered with the field.
const EventBody = Type.Unknown({ description: 'A canonical event (CONTRACT.md "Events")' });

const guardFor = (req: FastifyRequest) => (brand_id: string) => assertBrand(req, brand_id);

export default async function eventRoutes(app: App): Promise<void> {
  app.post(
    '/v1/events',
    {
      config: { scope: 'brand', action: 'event.submit' },
      schema: {
        tags: ['events'],
        summary: 'Submit one canonical event',
        description:
          "201 accepted with accruals/reversals; 200 duplicate (same idempotency_key, event_id, or an already accrued order_id); 422 rejected, 409 key or event id reused with another body, 403 another brand's store: each kept at GET /v1/rejections.",
        body: EventBody,
        response: {
          ...errorResponses(
            'INVALID_EVENT',
            'UNKNOWN_STORE',
            'LATE_EVENT',
            'REVERSAL_TARGET_NOT_FOUND',
            'REVERSAL_OUTSIDE_WINDOW',
            'OVER_REFUND',
            'IDEMPOTENCY_KEY_REUSED',
            'FORBIDDEN',
          ),
        },
      },
    },
    async (req, reply) => {
      const out = await submitSharedEvent(app.ctx, req.body, actorOf(req), guardFor(req));
      return reply.status(out.http_status).send(out.body);
    },
  );

  app.post(
    '/v1/events/batch',
    {
      config: { scope: 'brand', action: 'event.batch' },
      bodyLimit: 16 * 1024 * 1024,
      schema: {
        tags: ['events'],
        summary: `Submit up to ${MAX_BATCH_EVENTS} events; each gets its own outcome, in order`,
        body: Type.Object({
          events: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_BATCH_EVENTS }),
        }),
      },
    },
    async (req) => {
      const outcomes = await submitBatch(app.ctx, req.body.events, actorOf(req), guardFor(req));
      return { results: outcomes.map((o) => ({ ...o.body, http_status: o.http_status })) };
    },
  );

  app.post(
    '/v1/events/simulate',
    {
      config: { scope: 'brand' },
      schema: {
        tags: ['events'],
        summary: 'What an event would earn, with the rule explanation; changes nothing',
        body: EventBody,
      },
    },
    async (req) => simulateEvent(app.ctx, req.body, guardFor(req)),
  );

  app.get(
    '/v1/rejections',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['events'],
        summary: 'Rejected events with their payload and reason, newest first',
        querystring: Type.Object({
          ...PageQuery,
          code: Type.Optional(Type.String({ maxLength: 64 })),
          store_id: Type.Optional(Type.String({ maxLength: 128 })),
          brand_id: Type.Optional(Type.String({ maxLength: 64 })),
          from: Type.Optional(Timestamp),
          to: Type.Optional(Timestamp),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      const key = req.apiKey!;
      // A brand key sees its own brand's rejections only.
      const brand_id = key.parsed.kind === 'brand' ? key.parsed.brand_id : q.brand_id;
      return listRejections(app.ctx.db, {
        ...q,
        brand_id,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
        limit: q.limit ?? DEFAULT_PAGE_SIZE,
      });
    },
  );

  app.get(
    '/v1/reviews',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['events'],
        summary: 'Review items (negative balances left by reversal shortfalls), newest first',
        querystring: Type.Object({
          ...PageQuery,
          status: Type.Optional(Type.String({ maxLength: 32 })),
          member_id: Type.Optional(Type.String({ maxLength: 128 })),
          program_id: Type.Optional(Type.String({ maxLength: 64 })),
          kind: Type.Optional(Type.String({ maxLength: 64 })),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      const key = req.apiKey!;
      // A brand key sees its own brand's program (and the default program) only.
      let program_ids: string[] | undefined;
      if (key.parsed.kind === 'brand') {
        const group = await requireGroup(app.ctx);
        const own = group.brands.get(key.parsed.brand_id)?.program;
        program_ids = [...(own ? [own] : []), group.default_program_id];
      }
      return listReviews(app.ctx.db, { ...q, program_ids, limit: q.limit ?? DEFAULT_PAGE_SIZE });
    },
  );
}
