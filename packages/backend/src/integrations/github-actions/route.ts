// `POST /v1/webhooks/actions`: the signed callback of daytona/github-actions/create-sandbox.yml.
// The HMAC covers the exact bytes, so the body is read raw (never parsed and re-serialised first).
import type { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ActionsCallbackWaiter, handleActionsCallback } from "./callbacks.ts";

export const ACTIONS_WEBHOOK_PATH = "/v1/webhooks/actions";
/** The payload is a few hundred bytes (error text ≤ 8000 chars); anything far larger is not ours. */
const MAX_BODY_BYTES = 64 * 1024;

export interface ActionsWebhookOptions {
  /** KILN_ACTIONS_CALLBACK_SECRET; null/empty rejects every callback with 401. */
  secret: string | null;
  waiter: ActionsCallbackWaiter;
}

export function mountActionsWebhook(app: Hono, options: ActionsWebhookOptions): void {
  app.post(ACTIONS_WEBHOOK_PATH, async (c) => {
    const declared = Number(c.req.header("content-length") ?? "0");
    if (declared > MAX_BODY_BYTES) {
      return c.json({ code: "invalid_input", message: `callback body exceeds ${MAX_BODY_BYTES} bytes` }, 413);
    }
    const raw = await c.req.text();
    if (Buffer.byteLength(raw, "utf8") > MAX_BODY_BYTES) {
      return c.json({ code: "invalid_input", message: `callback body exceeds ${MAX_BODY_BYTES} bytes` }, 413);
    }
    const result = handleActionsCallback(raw, c.req.raw.headers, options.secret ?? "", options.waiter);
    return c.json(result.body, result.status as ContentfulStatusCode);
  });
}
