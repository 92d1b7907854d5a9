import { Type, type TSchema } from '@sinclair/typebox';
import { ERRORS } from '../errors.ts';
import { MEMBER_ID_PATTERN } from '../domain/events/canonical.ts';

// Schemas shared by routes. Responses are described for the OpenAPI document; amounts are JSON
// numbers (points) or integer minor units with a currency (money), per CONTRACT.md.

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.Union(Object.keys(ERRORS).map((c) => Type.Literal(c))),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorBody', description: 'Every 4xx/5xx answer. Codes are stable.' },
);

export const Money = Type.Object({ amount_minor: Type.Integer(), currency: Type.String() });

// In a request, an instant before 1970-01-01T00:00:00Z is refused (instant-bounds.ts).
export const Timestamp = Type.String({
  format: 'date-time',
  description: 'RFC 3339; in a request, 1970-01-01T00:00:00Z or later',
});

export const PageQuery = {
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
};

export const errorResponses = (...codes: (keyof typeof ERRORS)[]): Record<number, TSchema> => {
  const out: Record<number, TSchema> = {};
  for (const c of codes) out[ERRORS[c].status] = Type.Ref('ErrorBody');
  return out;
};

export const MemberId = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: MEMBER_ID_PATTERN,
});

/**
 * A route's preValidation hook for a body that may be left out (no body = the defaults): the
 * validator cannot express an optional top-level body, so a request without one is validated as `{}`.
 */
export const absentBodyAsEmpty = async (req: { body: unknown }): Promise<void> => {
  if (req.body === undefined || req.body === null) req.body = {};
};
