// Bridge between Kiln's typed errors and RivetKit's wire errors.
// Actions throw KilnError; RivetKit only forwards UserError details to clients, so convert at the edge.
import { type ErrorCode, KilnError, errorMessage, parseInput } from "@kiln/shared";
import { UserError } from "rivetkit";
import type { z } from "zod";

export function toUserError(error: KilnError): UserError {
  return new UserError(error.message, { code: error.code, metadata: { issues: error.issues } });
}

export function fail(code: ErrorCode, message: string): never {
  throw toUserError(new KilnError(code, message));
}

/** Validate an action input at the boundary; invalid input becomes a typed `invalid_input` error. */
export function validate<S extends z.ZodType>(schema: S, input: unknown, what?: string): z.output<S> {
  try {
    return parseInput(schema, input, what);
  } catch (error) {
    if (error instanceof KilnError) throw toUserError(error);
    throw error;
  }
}

/** Run an action body, converting KilnError (from providers, git, the agent) into client-visible errors. */
export async function guard<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof KilnError) throw toUserError(error);
    throw error;
  }
}

/** Reject after `ms` with a `timeout` KilnError; aborts `controller` so the work stops too. */
export async function withDeadline<T>(
  what: string,
  ms: number,
  work: (signal: AbortSignal) => Promise<T>,
  parent?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent?.reason);
  parent?.addEventListener("abort", onParentAbort, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new KilnError("timeout", `${what} did not finish within ${Math.round(ms / 1000)}s`);
      controller.abort(error);
      reject(error);
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener("abort", onParentAbort);
  }
}

export { errorMessage };
