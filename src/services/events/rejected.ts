import type { ErrorCode } from '../../errors.ts';
import type { EventProblem } from '../../domain/events/canonical.ts';

/** Thrown inside an event's transaction to reject it: the transaction rolls back, then the
 * rejection is kept (recordRejection) and answered with its code and field. */
export class EventRejected extends Error {
  readonly problem: EventProblem;
  constructor(
    code: ErrorCode,
    field: string | null,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'EventRejected';
    this.problem = { code, field, message };
  }
}
