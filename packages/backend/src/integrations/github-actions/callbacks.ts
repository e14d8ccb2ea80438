// Callbacks from the GitHub Actions workflow that creates Daytona sandboxes
// (daytona/github-actions/create-sandbox.yml). The workflow POSTs `{requestId, sandboxId, status,
// error?}` to `POST /v1/webhooks/actions` with `x-kiln-signature: sha256=<hex HMAC-SHA256 of the
// exact raw body>`; the provider waits for it through ActionsCallbackWaiter.
import { createHmac, timingSafeEqual } from "node:crypto";
import { KilnError, errorMessage } from "@kiln/shared";
import { z } from "zod";

export const ACTIONS_SIGNATURE_HEADER = "x-kiln-signature";

export const ActionsCallbackSchema = z.object({
  requestId: z.string().min(1).max(128),
  /** Empty when the workflow failed before a sandbox existed. */
  sandboxId: z.string().max(256),
  status: z.enum(["created", "failed"]),
  error: z.string().max(8000).optional(),
});
export type ActionsCallbackPayload = z.infer<typeof ActionsCallbackSchema>;

/** `sha256=<hex>` over the raw body, as the workflow computes it with openssl. */
export function signActionsCallback(rawBody: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(rawBody, "utf8").digest("hex")}`;
}

/**
 * Check the signature over the byte-exact raw body (never a re-serialised JSON) in constant time,
 * then parse the payload. Throws KilnError `unauthorized` for a missing/bad signature and
 * `invalid_input` for a well-signed but malformed body.
 */
export function verifyActionsCallback(
  rawBody: string,
  signatureHeader: string | undefined,
  secret: string,
): ActionsCallbackPayload {
  if (!secret) throw new KilnError("unauthorized", "Actions callback rejected: no callback secret is configured");
  if (!signatureHeader) throw new KilnError("unauthorized", `Actions callback rejected: missing ${ACTIONS_SIGNATURE_HEADER}`);
  const match = /^sha256=([0-9a-f]{64})$/i.exec(signatureHeader.trim());
  if (!match?.[1]) {
    throw new KilnError("unauthorized", `Actions callback rejected: ${ACTIONS_SIGNATURE_HEADER} must be sha256=<64 hex>`);
  }
  const given = Buffer.from(match[1].toLowerCase(), "hex");
  const expected = createHmac("sha256", secret).update(rawBody, "utf8").digest();
  // Both are 32 bytes here, which timingSafeEqual requires.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new KilnError("unauthorized", "Actions callback rejected: signature does not match the body");
  }
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch (error) {
    throw new KilnError("invalid_input", `Actions callback body is not JSON: ${errorMessage(error)}`);
  }
  const parsed = ActionsCallbackSchema.safeParse(json);
  if (!parsed.success) {
    const summary = parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
    throw new KilnError("invalid_input", `Actions callback payload is invalid: ${summary}`);
  }
  return parsed.data;
}

interface Pending {
  resolve(payload: ActionsCallbackPayload): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * In-process rendezvous between the webhook route and the provider step waiting for the workflow.
 * `wait` must be registered before dispatching (the callback can beat the dispatch response); a
 * callback with no waiter is kept briefly in case the waiter is just about to register.
 */
export class ActionsCallbackWaiter {
  private readonly pending = new Map<string, Pending>();
  private readonly early = new Map<string, { payload: ActionsCallbackPayload; at: number }>();

  constructor(
    private readonly earlyTtlMs = 10 * 60_000,
    private readonly maxEarly = 100,
  ) {}

  /** Resolve with the callback for `requestId`, or reject with `timeout` after `deadlineMs` ms. */
  wait(requestId: string, deadlineMs: number, signal?: AbortSignal): Promise<ActionsCallbackPayload> {
    this.pruneEarly();
    const early = this.early.get(requestId);
    if (early) {
      this.early.delete(requestId);
      return Promise.resolve(early.payload);
    }
    if (this.pending.has(requestId)) {
      return Promise.reject(new KilnError("conflict", `already waiting for Actions request ${requestId}`));
    }
    return new Promise<ActionsCallbackPayload>((resolve, reject) => {
      const onAbort = () => {
        this.settle(requestId);
        reject(signal?.reason instanceof Error ? signal.reason : new KilnError("timeout", "wait for Actions callback aborted"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => signal?.removeEventListener("abort", onAbort);
      const timer = setTimeout(() => {
        this.settle(requestId);
        cleanup();
        reject(
          new KilnError(
            "timeout",
            `GitHub Actions did not report sandbox creation (request ${requestId}) within ${Math.round(deadlineMs / 1000)}s`,
          ),
        );
      }, deadlineMs);
      this.pending.set(requestId, {
        resolve: (p) => {
          cleanup();
          resolve(p);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
        timer,
      });
    });
  }

  /** Deliver a verified callback. Returns true when a waiter was waiting for it. */
  resolve(payload: ActionsCallbackPayload): boolean {
    const waiter = this.settle(payload.requestId);
    if (waiter) {
      waiter.resolve(payload);
      return true;
    }
    this.pruneEarly();
    if (this.early.size >= this.maxEarly) {
      const oldest = this.early.keys().next().value;
      if (oldest !== undefined) this.early.delete(oldest);
    }
    this.early.set(payload.requestId, { payload, at: Date.now() });
    return false;
  }

  /** Stop waiting for `requestId` (e.g. the step was cancelled). */
  cancel(requestId: string, reason: Error): void {
    this.settle(requestId)?.reject(reason);
  }

  get waiting(): number {
    return this.pending.size;
  }

  private settle(requestId: string): Pending | undefined {
    const waiter = this.pending.get(requestId);
    if (!waiter) return undefined;
    clearTimeout(waiter.timer);
    this.pending.delete(requestId);
    return waiter;
  }

  private pruneEarly(): void {
    const cutoff = Date.now() - this.earlyTtlMs;
    for (const [id, entry] of this.early) if (entry.at < cutoff) this.early.delete(id);
  }
}

export type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/**
 * What the `POST /v1/webhooks/actions` route does: verify, deliver, answer. The route must pass the
 * raw body text (read it with `await c.req.text()`, before any JSON parsing).
 */
export function handleActionsCallback(
  rawBody: string,
  headers: HeaderBag,
  secret: string,
  waiter: ActionsCallbackWaiter,
): { status: number; body: Record<string, unknown> } {
  let payload: ActionsCallbackPayload;
  try {
    payload = verifyActionsCallback(rawBody, header(headers, ACTIONS_SIGNATURE_HEADER), secret);
  } catch (error) {
    if (error instanceof KilnError) return { status: error.status, body: error.toJSON() };
    throw error;
  }
  const matched = waiter.resolve(payload);
  return { status: 200, body: { ok: true, requestId: payload.requestId, matched } };
}
