// The earn calculation's public surface: services import from here, not from the parts.
export { calculateEarn } from './calculate.ts';
export { deserializeEarn, serializeEarn } from './explain.ts';
export { calculateRefund, calculateVoid, isRefundError } from './refund.ts';
export type { RefundError, RefundLine, RefundResult, ReturnedQuantities, ReturnLine } from './refund.ts';
export { roundPoints, unitPt4 } from './rounding.ts';
export type * from './types.ts';
