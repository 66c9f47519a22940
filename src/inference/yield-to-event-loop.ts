/**
 * Lets the event loop run (timers, I/O, other requests) between the synchronous steps of a long
 * CPU stage, so that a segmentation never holds the main thread for long at a stretch: a service
 * stays responsive while a large CT is processed. setImmediate, not a microtask: pending I/O and
 * timers run before the stage goes on. Costs a few microseconds per call.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that says when the current synchronous stretch has run for `budgetMs`: loops call
 * `due()` per unit of work and yield when it says so, so small inputs never yield at all.
 */
export function yieldBudget(budgetMs = 8): { due(): boolean } {
  let start = performance.now();
  return {
    due(): boolean {
      const now = performance.now();
      if (now - start < budgetMs) return false;
      start = now;
      return true;
    },
  };
}
