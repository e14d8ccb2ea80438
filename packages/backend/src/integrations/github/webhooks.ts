// Inbound GitHub webhooks: verify X-Hub-Signature-256 over the exact raw body (through
// @octokit/webhooks' verify, constant-time HMAC-SHA256), then normalise the few events Kiln acts on.
// The signature is checked before anything else is read, so unsigned callers learn nothing.
import { KilnError, parseInput } from "@kiln/shared";
import { z } from "zod";
import {
  type CheckStatus,
  type GitHubAccount,
  type GitHubPullRequest,
  type PullRequestState,
  pullRequestState,
  type WebhookVerifier,
} from "./app.ts";

export interface WebhookRepo {
  id: number;
  fullName: string;
  owner: string;
  name: string;
  /** Present on push/pull_request payloads; null on installation payloads. */
  defaultBranch: string | null;
}

/** A pull request as a webhook carries it: the API shape without the lazily computed `mergeable`. */
export type WebhookPullRequest = Omit<GitHubPullRequest, "mergeable">;

export type GitHubWebhookEvent = { deliveryId: string } & (
  | { kind: "ping" }
  | {
      kind: "installation";
      /** created | deleted | suspend | unsuspend | new_permissions_accepted */
      action: string;
      installationId: number;
      account: GitHubAccount | null;
      repositorySelection: "all" | "selected" | null;
      /** Repos granted at creation (empty for other actions). */
      repositories: WebhookRepo[];
    }
  | {
      kind: "installation_repositories";
      /** added | removed */
      action: string;
      installationId: number;
      /** The account the App is installed on (routes the event to its organization). */
      account: GitHubAccount | null;
      repositorySelection: "all" | "selected" | null;
      added: WebhookRepo[];
      removed: WebhookRepo[];
    }
  | {
      kind: "push";
      installationId: number | null;
      repo: WebhookRepo;
      ref: string;
      /** Branch name for refs/heads/*, null for tags. */
      branch: string | null;
      before: string;
      after: string;
      created: boolean;
      deleted: boolean;
      forced: boolean;
    }
  | {
      kind: "pull_request";
      /** opened | closed | reopened | synchronize | ready_for_review | converted_to_draft | edited | … */
      action: string;
      installationId: number | null;
      repo: WebhookRepo;
      pullRequest: WebhookPullRequest;
    }
  | {
      kind: "check";
      event: "check_suite" | "check_run";
      /** completed | requested | rerequested | created | requested_action */
      action: string;
      installationId: number | null;
      repo: WebhookRepo;
      /** check_run name; null for suites. */
      name: string | null;
      headSha: string;
      headBranch: string | null;
      status: string;
      conclusion: string | null;
      /** This run/suite alone; re-read the ref's combined status for the whole picture. */
      outcome: CheckStatus;
      pullRequestNumbers: number[];
    }
  | {
      kind: "pull_request_review";
      /** submitted | edited | dismissed */
      action: string;
      installationId: number | null;
      repo: WebhookRepo;
      pullRequest: WebhookPullRequest;
      review: { state: "approved" | "changes_requested" | "commented" | "dismissed"; reviewer: string | null };
    }
  | { kind: "ignored"; event: string; action: string | null }
);

export const HANDLED_WEBHOOK_EVENTS = [
  "ping",
  "installation",
  "installation_repositories",
  "push",
  "pull_request",
  "check_suite",
  "check_run",
  "pull_request_review",
] as const;

// --- payload schemas: only the fields Kiln reads; everything else passes through untouched -------

const AccountSchema = z.object({
  id: z.number().int(),
  login: z.string().optional(),
  slug: z.string().optional(),
  type: z.string().optional(),
});
const InstallationRefSchema = z.object({ id: z.number().int() });
const InstallationSchema = InstallationRefSchema.extend({
  account: AccountSchema.nullable().optional(),
  repository_selection: z.enum(["all", "selected"]).optional(),
});
const ShortRepoSchema = z.object({ id: z.number().int(), full_name: z.string().includes("/") });
const RepoSchema = ShortRepoSchema.extend({ default_branch: z.string().optional() });
const PullSchema = z.object({
  number: z.number().int(),
  html_url: z.string(),
  title: z.string(),
  state: z.string(),
  draft: z.boolean().optional(),
  merged: z.boolean().nullable().optional(),
  merged_at: z.string().nullable().optional(),
  head: z.object({ ref: z.string(), sha: z.string() }),
  base: z.object({ ref: z.string() }),
});
const PullNumbersSchema = z.array(z.object({ number: z.number().int() })).optional();

const PayloadSchemas = {
  installation: z.object({
    action: z.string(),
    installation: InstallationSchema,
    repositories: z.array(ShortRepoSchema).optional(),
  }),
  installation_repositories: z.object({
    action: z.string(),
    installation: InstallationSchema,
    repository_selection: z.enum(["all", "selected"]).optional(),
    repositories_added: z.array(ShortRepoSchema),
    repositories_removed: z.array(ShortRepoSchema),
  }),
  push: z.object({
    ref: z.string(),
    before: z.string(),
    after: z.string(),
    created: z.boolean().optional(),
    deleted: z.boolean().optional(),
    forced: z.boolean().optional(),
    repository: RepoSchema,
    installation: InstallationRefSchema.optional(),
  }),
  pull_request: z.object({
    action: z.string(),
    pull_request: PullSchema,
    repository: RepoSchema,
    installation: InstallationRefSchema.optional(),
  }),
  check_suite: z.object({
    action: z.string(),
    check_suite: z.object({
      head_sha: z.string(),
      head_branch: z.string().nullable().optional(),
      status: z.string().nullable(),
      conclusion: z.string().nullable(),
      pull_requests: PullNumbersSchema,
    }),
    repository: RepoSchema,
    installation: InstallationRefSchema.optional(),
  }),
  check_run: z.object({
    action: z.string(),
    check_run: z.object({
      name: z.string(),
      head_sha: z.string(),
      status: z.string(),
      conclusion: z.string().nullable(),
      check_suite: z.object({ head_branch: z.string().nullable().optional() }).optional(),
      pull_requests: PullNumbersSchema,
    }),
    repository: RepoSchema,
    installation: InstallationRefSchema.optional(),
  }),
  pull_request_review: z.object({
    action: z.string(),
    review: z.object({ state: z.string(), user: z.object({ login: z.string() }).nullable().optional() }),
    pull_request: PullSchema,
    repository: RepoSchema,
    installation: InstallationRefSchema.optional(),
  }),
};

function account(a: z.infer<typeof AccountSchema> | null | undefined): GitHubAccount | null {
  return a ? { id: a.id, login: a.login ?? a.slug ?? String(a.id), type: a.type ?? "User" } : null;
}

function repo(r: z.infer<typeof RepoSchema>): WebhookRepo {
  const [owner = "", name = ""] = r.full_name.split("/", 2);
  return { id: r.id, fullName: r.full_name, owner, name, defaultBranch: r.default_branch ?? null };
}

function pull(p: z.infer<typeof PullSchema>): WebhookPullRequest {
  return {
    number: p.number,
    url: p.html_url,
    title: p.title,
    state: pullRequestState({ state: p.state, draft: p.draft, merged: p.merged ?? undefined, merged_at: p.merged_at ?? null }),
    draft: p.draft ?? false,
    merged: p.merged === true || (p.merged_at ?? null) !== null,
    headRef: p.head.ref,
    headSha: p.head.sha,
    baseRef: p.base.ref,
  };
}

const FAILED = new Set(["failure", "timed_out", "cancelled", "action_required", "startup_failure", "stale"]);
function outcome(status: string | null, conclusion: string | null): CheckStatus {
  if (status !== "completed") return "pending";
  return conclusion !== null && FAILED.has(conclusion) ? "failure" : "success";
}

function reviewState(state: string): "approved" | "changes_requested" | "commented" | "dismissed" {
  switch (state.toLowerCase()) {
    case "approved":
      return "approved";
    case "changes_requested":
      return "changes_requested";
    case "dismissed":
      return "dismissed";
    default:
      return "commented";
  }
}

/** Turn a verified, parsed payload into Kiln's union. Throws invalid_input on a malformed payload. */
export function normaliseWebhook(event: string, deliveryId: string, payload: unknown): GitHubWebhookEvent {
  const what = `${event} webhook payload`;
  switch (event) {
    case "ping":
      return { kind: "ping", deliveryId };
    case "installation": {
      const p = parseInput(PayloadSchemas.installation, payload, what);
      return {
        kind: "installation",
        deliveryId,
        action: p.action,
        installationId: p.installation.id,
        account: account(p.installation.account),
        repositorySelection: p.installation.repository_selection ?? null,
        repositories: (p.repositories ?? []).map(repo),
      };
    }
    case "installation_repositories": {
      const p = parseInput(PayloadSchemas.installation_repositories, payload, what);
      return {
        kind: "installation_repositories",
        deliveryId,
        action: p.action,
        installationId: p.installation.id,
        account: account(p.installation.account),
        repositorySelection: p.repository_selection ?? p.installation.repository_selection ?? null,
        added: p.repositories_added.map(repo),
        removed: p.repositories_removed.map(repo),
      };
    }
    case "push": {
      const p = parseInput(PayloadSchemas.push, payload, what);
      return {
        kind: "push",
        deliveryId,
        installationId: p.installation?.id ?? null,
        repo: repo(p.repository),
        ref: p.ref,
        branch: p.ref.startsWith("refs/heads/") ? p.ref.slice("refs/heads/".length) : null,
        before: p.before,
        after: p.after,
        created: p.created ?? false,
        deleted: p.deleted ?? false,
        forced: p.forced ?? false,
      };
    }
    case "pull_request": {
      const p = parseInput(PayloadSchemas.pull_request, payload, what);
      return {
        kind: "pull_request",
        deliveryId,
        action: p.action,
        installationId: p.installation?.id ?? null,
        repo: repo(p.repository),
        pullRequest: pull(p.pull_request),
      };
    }
    case "check_suite": {
      const p = parseInput(PayloadSchemas.check_suite, payload, what);
      const s = p.check_suite;
      return {
        kind: "check",
        event: "check_suite",
        deliveryId,
        action: p.action,
        installationId: p.installation?.id ?? null,
        repo: repo(p.repository),
        name: null,
        headSha: s.head_sha,
        headBranch: s.head_branch ?? null,
        status: s.status ?? "queued",
        conclusion: s.conclusion,
        outcome: outcome(s.status, s.conclusion),
        pullRequestNumbers: (s.pull_requests ?? []).map((x) => x.number),
      };
    }
    case "check_run": {
      const p = parseInput(PayloadSchemas.check_run, payload, what);
      const r = p.check_run;
      return {
        kind: "check",
        event: "check_run",
        deliveryId,
        action: p.action,
        installationId: p.installation?.id ?? null,
        repo: repo(p.repository),
        name: r.name,
        headSha: r.head_sha,
        headBranch: r.check_suite?.head_branch ?? null,
        status: r.status,
        conclusion: r.conclusion,
        outcome: outcome(r.status, r.conclusion),
        pullRequestNumbers: (r.pull_requests ?? []).map((x) => x.number),
      };
    }
    case "pull_request_review": {
      const p = parseInput(PayloadSchemas.pull_request_review, payload, what);
      return {
        kind: "pull_request_review",
        deliveryId,
        action: p.action,
        installationId: p.installation?.id ?? null,
        repo: repo(p.repository),
        pullRequest: pull(p.pull_request),
        review: { state: reviewState(p.review.state), reviewer: p.review.user?.login ?? null },
      };
    }
    default: {
      const action = (payload as { action?: unknown } | null)?.action;
      return { kind: "ignored", deliveryId, event, action: typeof action === "string" ? action : null };
    }
  }
}

export interface WebhookInput {
  /** The request body exactly as received: re-serialised JSON does not verify. */
  rawBody: string | Uint8Array;
  /** X-Hub-Signature-256 */
  signature: string | null | undefined;
  /** X-GitHub-Event */
  event: string | null | undefined;
  /** X-GitHub-Delivery */
  deliveryId: string | null | undefined;
}

const SIGNATURE_FORMAT = /^sha256=[0-9a-f]{64}$/;

function bodyText(raw: string | Uint8Array): string {
  if (typeof raw === "string") return raw;
  try {
    // ignoreBOM keeps a leading BOM, so the HMAC covers the same bytes GitHub signed.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw new KilnError("invalid_input", "webhook body is not valid UTF-8");
  }
}

/** Verify the signature, then parse and normalise. unauthorized → 401, invalid_input → 400. */
export async function verifyAndParseWebhook(app: WebhookVerifier, input: WebhookInput): Promise<GitHubWebhookEvent> {
  const signature = input.signature?.trim() ?? "";
  if (!signature) throw new KilnError("unauthorized", "missing X-Hub-Signature-256 header");
  if (!SIGNATURE_FORMAT.test(signature)) {
    throw new KilnError("unauthorized", "X-Hub-Signature-256 must be sha256=<64 hex digits>");
  }
  const body = bodyText(input.rawBody);
  if (body.length === 0) throw new KilnError("invalid_input", "webhook body is empty");
  if (!(await app.webhooks.verify(body, signature))) {
    throw new KilnError("unauthorized", "webhook signature does not match the body and the configured secret");
  }
  const event = input.event?.trim() ?? "";
  const deliveryId = input.deliveryId?.trim() ?? "";
  if (!/^[a-z_]{1,64}$/.test(event)) throw new KilnError("invalid_input", "missing or invalid X-GitHub-Event header");
  if (!deliveryId || deliveryId.length > 128) {
    throw new KilnError("invalid_input", "missing or invalid X-GitHub-Delivery header");
  }
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    throw new KilnError("invalid_input", "webhook body is not JSON (form-encoded webhooks are not supported)");
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new KilnError("invalid_input", "webhook body must be a JSON object");
  }
  return normaliseWebhook(event, deliveryId, payload);
}

export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === lower) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

export interface WebhookResponse {
  status: number;
  body: { ok: true; deliveryId: string; kind: GitHubWebhookEvent["kind"] } | { code: string; message: string };
}

/**
 * The whole `POST /v1/webhooks/github` handler minus the framework: 401 bad/missing signature,
 * 400 malformed, 202 once `onEvent` has accepted the event. `onEvent` should enqueue and return
 * quickly (GitHub times a delivery out after 10 s and does not retry); its errors propagate.
 */
export async function handleGithubWebhookRequest(
  app: WebhookVerifier,
  rawBody: string | Uint8Array,
  headers: WebhookHeaders,
  onEvent: (event: GitHubWebhookEvent) => void | Promise<void>,
): Promise<WebhookResponse> {
  let event: GitHubWebhookEvent;
  try {
    event = await verifyAndParseWebhook(app, {
      rawBody,
      signature: header(headers, "x-hub-signature-256"),
      event: header(headers, "x-github-event"),
      deliveryId: header(headers, "x-github-delivery"),
    });
  } catch (error) {
    if (error instanceof KilnError && (error.code === "unauthorized" || error.code === "invalid_input")) {
      return { status: error.status, body: { code: error.code, message: error.message } };
    }
    throw error;
  }
  await onEvent(event);
  return { status: 202, body: { ok: true, deliveryId: event.deliveryId, kind: event.kind } };
}
