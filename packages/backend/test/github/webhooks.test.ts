// Webhooks signed independently with node:crypto and verified by the real @octokit/webhooks code
// inside the driver; normalisation of each handled event; the Hono route shape the lead wires.
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { OctokitGitHubApp } from "../../src/integrations/github/app.ts";
import {
  type GitHubWebhookEvent,
  handleGithubWebhookRequest,
  verifyAndParseWebhook,
} from "../../src/integrations/github/webhooks.ts";
import { APP_ID, expectKilnError, generateAppKeys, signWebhook, WEBHOOK_SECRET } from "./helpers.ts";

// No network needed: verification is local. apiUrl points nowhere on purpose.
const driver = new OctokitGitHubApp({
  appId: APP_ID,
  privateKey: generateAppKeys().privateKeyPem,
  webhookSecret: WEBHOOK_SECRET,
  oauth: null,
  apiUrl: "http://127.0.0.1:9",
  webUrl: "http://127.0.0.1:9",
});

const installation = { id: 77, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc=" };
const repository = {
  id: 501,
  node_id: "R_501",
  name: "widgets",
  full_name: "acme/widgets",
  private: true,
  owner: { login: "acme", id: 9, type: "Organization" },
  html_url: "https://github.com/acme/widgets",
  default_branch: "main",
};
const sender = { login: "ana", id: 3, type: "User" };
const pullRequest = (over: Record<string, unknown> = {}) => ({
  url: "https://api.github.com/repos/acme/widgets/pulls/7",
  id: 9001,
  number: 7,
  html_url: "https://github.com/acme/widgets/pull/7",
  state: "open",
  title: "Task 7",
  draft: false,
  merged: false,
  merged_at: null,
  head: { ref: "kiln/task-7", sha: "a".repeat(40), label: "acme:kiln/task-7" },
  base: { ref: "main", sha: "b".repeat(40), label: "acme:main" },
  user: sender,
  ...over,
});

function delivery(event: string, payload: unknown, opts: { secret?: string; pretty?: boolean } = {}) {
  const rawBody = JSON.stringify(payload, null, opts.pretty ? 2 : undefined);
  return {
    rawBody,
    headers: {
      "X-GitHub-Event": event,
      "X-GitHub-Delivery": `d-${event}-1`,
      "X-Hub-Signature-256": signWebhook(opts.secret ?? WEBHOOK_SECRET, rawBody),
      "Content-Type": "application/json",
    } as Record<string, string>,
  };
}

async function parse(event: string, payload: unknown): Promise<GitHubWebhookEvent> {
  const d = delivery(event, payload);
  return verifyAndParseWebhook(driver, {
    rawBody: d.rawBody,
    signature: d.headers["X-Hub-Signature-256"],
    event,
    deliveryId: d.headers["X-GitHub-Delivery"],
  });
}

describe("signature verification", () => {
  const payload = { action: "opened", pull_request: pullRequest(), repository, installation, sender };

  it("accepts a body signed with the secret (string and bytes)", async () => {
    const d = delivery("pull_request", payload);
    const events: GitHubWebhookEvent[] = [];
    const res = await handleGithubWebhookRequest(driver, d.rawBody, d.headers, (e) => void events.push(e));
    expect(res).toEqual({ status: 202, body: { ok: true, deliveryId: "d-pull_request-1", kind: "pull_request" } });
    expect(events).toHaveLength(1);
    const bytes = new TextEncoder().encode(d.rawBody);
    expect((await handleGithubWebhookRequest(driver, bytes, new Headers(d.headers), () => undefined)).status).toBe(202);
  });

  it("verifies the exact bytes, including non-ASCII text and a BOM", async () => {
    const rawBody = `\uFEFF${JSON.stringify({ ...payload, pull_request: pullRequest({ title: "Fix ü → ✓" }) })}`;
    const bytes = new TextEncoder().encode(rawBody);
    const signature = signWebhook(WEBHOOK_SECRET, Buffer.from(bytes));
    // The BOM is kept for the HMAC; JSON.parse then rejects it, so this is a 400, not a 401.
    const res = await handleGithubWebhookRequest(driver, bytes, { "x-hub-signature-256": signature, "x-github-event": "pull_request", "x-github-delivery": "d" }, () => undefined);
    expect(res.status).toBe(400);
    const plain = JSON.stringify({ ...payload, pull_request: pullRequest({ title: "Fix ü → ✓" }) });
    const ok = await handleGithubWebhookRequest(
      driver,
      new TextEncoder().encode(plain),
      { "x-hub-signature-256": signWebhook(WEBHOOK_SECRET, plain), "x-github-event": "pull_request", "x-github-delivery": "d" },
      () => undefined,
    );
    expect(ok.status).toBe(202);
  });

  const rejected: Array<[string, (d: ReturnType<typeof delivery>) => void]> = [
    ["missing signature", (d) => delete d.headers["X-Hub-Signature-256"]],
    ["empty signature", (d) => (d.headers["X-Hub-Signature-256"] = "")],
    ["forged signature", (d) => (d.headers["X-Hub-Signature-256"] = `sha256=${"0".repeat(64)}`)],
    ["signature with the wrong secret", (d) => (d.headers["X-Hub-Signature-256"] = signWebhook("not-the-secret", d.rawBody))],
    ["sha1 signature", (d) => (d.headers["X-Hub-Signature-256"] = `sha1=${"a".repeat(40)}`)],
    ["modified body", (d) => (d.rawBody = d.rawBody.replace('"Task 7"', '"Task 8"'))],
    ["re-serialised body", (d) => (d.rawBody = JSON.stringify(JSON.parse(d.rawBody), null, 1))],
  ];
  for (const [name, tamper] of rejected) {
    it(`401 on ${name}, and onEvent is not called`, async () => {
      const d = delivery("pull_request", payload);
      tamper(d);
      let called = false;
      const res = await handleGithubWebhookRequest(driver, d.rawBody, d.headers, () => void (called = true));
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: "unauthorized" });
      expect(called).toBe(false);
    });
  }

  it("401 comes before any header or payload checks", async () => {
    const res = await handleGithubWebhookRequest(driver, "not json", { "x-hub-signature-256": `sha256=${"1".repeat(64)}` }, () => undefined);
    expect(res.status).toBe(401);
  });

  it("400 on a signed but malformed delivery", async () => {
    const signed = (raw: string, headers: Record<string, string> = {}) =>
      handleGithubWebhookRequest(
        driver,
        raw,
        { "x-hub-signature-256": signWebhook(WEBHOOK_SECRET, raw), "x-github-event": "pull_request", "x-github-delivery": "d1", ...headers },
        () => undefined,
      );
    expect((await signed("{not json")).status).toBe(400);
    expect((await signed("[1,2]")).status).toBe(400);
    const missing = await signed(JSON.stringify({ action: "opened", repository }));
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/pull_request/) });
    expect((await signed(JSON.stringify(payload), { "x-github-event": "" })).status).toBe(400);
    expect((await signed(JSON.stringify(payload), { "x-github-delivery": "" })).status).toBe(400);
    await expectKilnError(
      verifyAndParseWebhook(driver, { rawBody: "", signature: signWebhook(WEBHOOK_SECRET, ""), event: "push", deliveryId: "d" }),
      "invalid_input",
    );
  });

  it("lets errors from onEvent propagate to the route", async () => {
    const d = delivery("pull_request", payload);
    await expect(
      handleGithubWebhookRequest(driver, d.rawBody, d.headers, () => {
        throw new Error("queue is down");
      }),
    ).rejects.toThrow("queue is down");
  });
});

describe("normalised events", () => {
  it("ping", async () => {
    expect(await parse("ping", { zen: "Keep it logically awesome.", hook_id: 1, hook: {} })).toEqual({ kind: "ping", deliveryId: "d-ping-1" });
  });

  it("installation created", async () => {
    const e = await parse("installation", {
      action: "created",
      installation: { ...installation, account: { login: "acme", id: 9, type: "Organization" }, repository_selection: "selected" },
      repositories: [{ id: 501, node_id: "R", name: "widgets", full_name: "acme/widgets", private: true }],
      sender,
    });
    expect(e).toEqual({
      kind: "installation",
      deliveryId: "d-installation-1",
      action: "created",
      installationId: 77,
      account: { id: 9, login: "acme", type: "Organization" },
      repositorySelection: "selected",
      repositories: [{ id: 501, fullName: "acme/widgets", owner: "acme", name: "widgets", defaultBranch: null }],
    });
  });

  it("installation_repositories added/removed", async () => {
    const e = await parse("installation_repositories", {
      action: "added",
      installation: { ...installation, account: { login: "acme", id: 9, type: "Organization" } },
      repository_selection: "selected",
      repositories_added: [{ id: 502, node_id: "R2", name: "gadgets", full_name: "acme/gadgets", private: false }],
      repositories_removed: [],
      sender,
    });
    expect(e).toMatchObject({
      kind: "installation_repositories",
      action: "added",
      installationId: 77,
      account: { login: "acme", id: 9, type: "Organization" },
      added: [{ id: 502, fullName: "acme/gadgets" }],
      removed: [],
    });
  });

  it("push to a branch and to a tag", async () => {
    const base = { before: "0".repeat(40), after: "c".repeat(40), created: true, deleted: false, forced: false, repository, installation, sender, commits: [] };
    expect(await parse("push", { ...base, ref: "refs/heads/kiln/task-7" })).toMatchObject({
      kind: "push",
      installationId: 77,
      repo: { fullName: "acme/widgets", defaultBranch: "main" },
      branch: "kiln/task-7",
      after: "c".repeat(40),
      created: true,
    });
    expect(await parse("push", { ...base, ref: "refs/tags/v1" })).toMatchObject({ kind: "push", branch: null, ref: "refs/tags/v1" });
  });

  it("pull_request opened / draft / merged / closed", async () => {
    const pr = async (action: string, over: Record<string, unknown>) =>
      parse("pull_request", { action, number: 7, pull_request: pullRequest(over), repository, installation, sender });
    expect(await pr("opened", {})).toMatchObject({
      kind: "pull_request",
      action: "opened",
      installationId: 77,
      pullRequest: { number: 7, state: "open", headRef: "kiln/task-7", headSha: "a".repeat(40), baseRef: "main", url: "https://github.com/acme/widgets/pull/7" },
    });
    expect((await pr("converted_to_draft", { draft: true })) as { pullRequest: { state: string } }).toMatchObject({ pullRequest: { state: "draft" } });
    expect(await pr("closed", { state: "closed", merged: true, merged_at: "2026-11-02T10:00:00Z" })).toMatchObject({
      pullRequest: { state: "merged", merged: true },
    });
    expect(await pr("closed", { state: "closed" })).toMatchObject({ pullRequest: { state: "closed", merged: false } });
  });

  it("check_suite and check_run", async () => {
    const suite = await parse("check_suite", {
      action: "completed",
      check_suite: { id: 1, head_branch: "kiln/task-7", head_sha: "a".repeat(40), status: "completed", conclusion: "failure", pull_requests: [{ number: 7, id: 9001 }] },
      repository,
      installation,
      sender,
    });
    expect(suite).toMatchObject({ kind: "check", event: "check_suite", outcome: "failure", headBranch: "kiln/task-7", pullRequestNumbers: [7], name: null });
    const run = await parse("check_run", {
      action: "created",
      check_run: { id: 2, name: "build", head_sha: "a".repeat(40), status: "in_progress", conclusion: null, check_suite: { id: 1, head_branch: "kiln/task-7" }, pull_requests: [] },
      repository,
      installation,
      sender,
    });
    expect(run).toMatchObject({ kind: "check", event: "check_run", name: "build", outcome: "pending", status: "in_progress", conclusion: null });
    const ok = await parse("check_run", {
      action: "completed",
      check_run: { id: 2, name: "build", head_sha: "a".repeat(40), status: "completed", conclusion: "neutral", pull_requests: [] },
      repository,
      installation,
    });
    expect(ok).toMatchObject({ outcome: "success", headBranch: null });
  });

  it("pull_request_review", async () => {
    const e = await parse("pull_request_review", {
      action: "submitted",
      review: { id: 5, state: "changes_requested", user: { login: "bo", id: 4 }, body: "please fix" },
      pull_request: pullRequest(),
      repository,
      installation,
      sender,
    });
    expect(e).toMatchObject({
      kind: "pull_request_review",
      installationId: 77,
      pullRequest: { number: 7, state: "open" },
      review: { state: "changes_requested", reviewer: "bo" },
    });
    const approved = await parse("pull_request_review", {
      action: "submitted",
      review: { id: 6, state: "approved", user: { login: "ana", id: 3 } },
      pull_request: pullRequest(),
      repository,
    });
    expect(approved).toMatchObject({ installationId: null, review: { state: "approved" } });
  });

  it("events Kiln does not handle are accepted and marked ignored", async () => {
    expect(await parse("issues", { action: "opened", issue: {}, repository })).toEqual({
      kind: "ignored",
      deliveryId: "d-issues-1",
      event: "issues",
      action: "opened",
    });
  });
});

describe("as a Hono route (how the lead wires POST /v1/webhooks/github)", () => {
  const seen: GitHubWebhookEvent[] = [];
  const app = new Hono();
  app.post("/v1/webhooks/github", async (c) => {
    // Raw text, never c.req.json(): the signature covers the exact bytes.
    const raw = new Uint8Array(await c.req.arrayBuffer());
    const res = await handleGithubWebhookRequest(driver, raw, c.req.raw.headers, (e) => void seen.push(e));
    return c.json(res.body, res.status as 202 | 400 | 401);
  });

  it("202 / 401 / 400 over HTTP semantics", async () => {
    const payload = { action: "opened", pull_request: pullRequest(), repository, installation, sender };
    const d = delivery("pull_request", payload, { pretty: true });
    const ok = await app.request("/v1/webhooks/github", { method: "POST", headers: d.headers, body: d.rawBody });
    expect(ok.status).toBe(202);
    expect(seen.map((e) => e.kind)).toEqual(["pull_request"]);
    const forged = await app.request("/v1/webhooks/github", {
      method: "POST",
      headers: { ...d.headers, "X-Hub-Signature-256": signWebhook("guess", d.rawBody) },
      body: d.rawBody,
    });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ code: "unauthorized", message: "webhook signature does not match the body and the configured secret" });
    const bad = "{]";
    const malformed = await app.request("/v1/webhooks/github", {
      method: "POST",
      headers: { ...d.headers, "X-Hub-Signature-256": signWebhook(WEBHOOK_SECRET, bad) },
      body: bad,
    });
    expect(malformed.status).toBe(400);
    expect(seen).toHaveLength(1);
  });
});
