/**
 * A step a test waits for, with a deadline: when it never comes (a revocation
 * that disconnects nobody) the test fails naming the step, instead of running
 * into vitest's timeout with no word of what it was waiting for.
 *
 *   const event = await within(5000, 'the revoked worker is disconnected', w.agent.waitFor('failed'));
 */
export function within<T>(ms: number, what: string | (() => string), step: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${typeof what === 'string' ? what : what()}: not within ${ms} ms`)), ms).unref();
  });
  const raced = Promise.race([step, late]).finally(() => clearTimeout(timer));
  // A step a test set up but, having failed elsewhere first, never awaited must not fail a later test as an unhandled rejection.
  raced.catch(() => {});
  return raced;
}
