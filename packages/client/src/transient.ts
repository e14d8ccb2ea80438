// Engine-level failures that say nothing about the task itself: the actor was asleep, stopping or
// being rescheduled when the request arrived ("Actor not found" from the gateway, RivetKit's generic
// internal error). A task read racing its actor's sleep must not surface as `not_found`: retry.

/** Actions that only read (or recompute idempotently): safe to repeat after any engine-level failure. */
export const READ_ACTIONS: ReadonlySet<string> = new Set(["getDetail", "getChanges", "getFileDiff", "readFile", "getSandbox", "getSummary"]);

/** Backoff between attempts: about 3 s in all before the error is surfaced. */
const DELAYS_MS = [100, 200, 400, 800, 1500];

type RawError = { code?: unknown; group?: unknown };
/** The request never reached a running actor (envoy/actor_not_found, actor/stopping, actor/restarting). */
const NOT_RUN: ReadonlySet<string> = new Set(["actor_not_found", "stopping", "restarting"]);

/**
 * Whether `error` (as thrown by RivetKit) may be retried for `action`. Errors raised by Kiln's own
 * actions come as group "user" and are final. One the engine raised before any actor ran the request
 * may be retried for any action; other engine errors only for reads (a write may have run halfway).
 */
function retriable(action: string, error: unknown): boolean {
  const e = (error ?? {}) as RawError;
  if (typeof e.code !== "string" || typeof e.group !== "string" || e.group === "user") return false;
  // actor/not_found: RivetKit already retried the lookup for seconds; the actor does not exist.
  if (e.group === "actor" && e.code === "not_found") return false;
  return NOT_RUN.has(e.code) || READ_ACTIONS.has(action);
}

/** Run `call`, retrying engine-level failures of `action` with a short backoff. */
export async function withEngineRetry<T>(action: string, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const delay = DELAYS_MS[attempt];
      if (delay === undefined || !retriable(action, error)) throw error;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
