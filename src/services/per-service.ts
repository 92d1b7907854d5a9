import type { Ctx } from './context.ts';

/** A value kept per service instance (tests build several in one process), made on first use. */
export function perService<T>(make: (ctx: Ctx) => T): (ctx: Ctx) => T {
  const values = new WeakMap<Ctx, T>();
  return (ctx) => {
    let value = values.get(ctx);
    if (value === undefined) values.set(ctx, (value = make(ctx)));
    return value;
  };
}
