// The one error catalogue: every error a caller can see has a stable code and HTTP status here
// (in the spirit of Fastify's lib/errors.js). Routes and services throw `AppError`; the API's
// error handler renders `{"error": {"code", "message", "details"}}`. /openapi.json lists them.

export const ERRORS = {
  // 400: the request itself cannot be read
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON' },
  INVALID_REQUEST: { status: 400, message: 'The request does not match the schema' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send application/json' },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than the limit' },
  // 401/403: auth
  UNAUTHENTICATED: { status: 401, message: 'Send Authorization: Bearer <key>' },
  FORBIDDEN: { status: 403, message: 'The key lacks the scope this call needs' },
  // 404
  NOT_FOUND: { status: 404, message: 'No such resource' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route' },
  MEMBER_NOT_FOUND: { status: 404, message: 'No such member' },
  REDEMPTION_NOT_FOUND: { status: 404, message: 'No such redemption' },
  REWARD_NOT_FOUND: { status: 404, message: 'No such reward' },
  CONFIG_NOT_FOUND: { status: 404, message: 'No configuration has been applied yet' },
  // 409: state conflicts
  IDEMPOTENCY_KEY_REUSED: { status: 409, message: 'This idempotency key was used with a different body' },
  EVENT_ID_REUSED: { status: 409, message: 'This event_id was used for a different event' },
  INSUFFICIENT_POINTS: { status: 409, message: 'Not enough points' },
  HOLD_ALREADY_RESOLVED: { status: 409, message: 'This hold was already captured, released or expired' },
  REDEMPTION_NOT_REVERSIBLE: { status: 409, message: 'Only a captured redemption can be reversed' },
  REWARD_SOLD_OUT: { status: 409, message: 'The reward is sold out' },
  REWARD_UNAVAILABLE: { status: 409, message: 'The reward is not available now' },
  TRANSFER_LIMIT_EXCEEDED: { status: 409, message: "The program's daily transfer limit would be exceeded" },
  CONCURRENT_UPDATE: { status: 409, message: 'The write conflicted with another; retry it' },
  // 422: well-formed but not acceptable
  INVALID_CONFIG: { status: 422, message: 'The configuration is not valid' },
  INVALID_EVENT: { status: 422, message: 'The event is not valid' },
  UNKNOWN_STORE: { status: 422, message: 'The store is not in the configuration' },
  UNKNOWN_BRAND: { status: 422, message: 'The brand is not in the configuration' },
  UNKNOWN_PROGRAM: { status: 422, message: 'The program is not in the configuration' },
  LATE_EVENT: { status: 422, message: "The event is older than the program's late-event window" },
  FUTURE_EVENT: { status: 422, message: 'The event is dated in the future' },
  REVERSAL_TARGET_NOT_FOUND: { status: 422, message: 'The event to reverse is not in the ledger' },
  REVERSAL_OUTSIDE_WINDOW: {
    status: 422,
    message: "The reversal target is older than the program's lookback",
  },
  OVER_REFUND: { status: 422, message: 'The refund exceeds what was purchased' },
  CURRENCY_MISMATCH: { status: 422, message: 'The currency has no exchange rate at that time' },
  INVALID_AMOUNT: { status: 422, message: 'The amount is not acceptable' },
  INVALID_LEDGER_ENTRY: { status: 422, message: 'The ledger entry is not valid' },
  NO_CONFIG: {
    status: 422,
    message: 'Apply a configuration first (PUT /v1/config or `pointpool apply FILE`)',
  },
  INVALID_CURSOR: { status: 400, message: 'The cursor is not valid' },
  // Points lifecycle (issue 5): statements, order summaries, adjustments
  ORDER_NOT_FOUND: { status: 404, message: 'No loyalty activity for this order' },
  ADJUSTMENT_NOT_FOUND: { status: 404, message: 'No such adjustment' },
  INVALID_PERIOD: { status: 422, message: 'The period is not valid: from must be before to' },
  STATEMENT_TOO_LARGE: {
    status: 422,
    message: 'The period holds too many entries for one statement; ask for a shorter one',
  },
  // settlement (issue 6)
  SETTLEMENT_PERIOD_NOT_FOUND: { status: 404, message: 'No such settlement period' },
  SETTLEMENT_PERIOD_ALREADY_CLOSED: {
    status: 409,
    message: 'A closed settlement period already covers this instant; close a later `to`',
  },
  INVALID_RANGE: { status: 422, message: 'The time range is not acceptable' },
  INVALID_PAYMENT: { status: 422, message: 'The settlement payment is not acceptable' },
  // 5xx: never for bad input
  INTERNAL: { status: 500, message: 'Internal error' },
  UNAVAILABLE: { status: 503, message: 'The service is shutting down or the store is unavailable' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message?: string, details: Record<string, unknown> = {}) {
    super(message ?? ERRORS[code].message);
    this.name = 'AppError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;
