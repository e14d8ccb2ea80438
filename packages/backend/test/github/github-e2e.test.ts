// GitHub end to end against the real backend process: fake GitHub (JWT-verified App auth, expiring
// scoped installation tokens, OpenAPI-validated bodies) + a loopback `git http-backend` server that
// requires those tokens + sign-in through the OAuth routes. A task on an installed repo provisions
// (clone with a token), the scripted agent writes a file, the task pushes and opens a PR (reused the
// second time), a signed `pull_request` merged webhook archives it; forged and duplicate deliveries
// change nothing; a user of another org is refused.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { type KilnClient, createKilnClient } from "@kiln/client";
import { KilnError, type RepoRecord, type TaskDetail } from "@kiln/shared";
import { createClient } from "rivetkit/client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Backend, startBackend, waitFor } from "../harness.ts";
import { git } from "./fakes/git-server.ts";
import type { FakeInstallation, FakeRepo } from "./fakes/fake-github.ts";
import { OAUTH, WEBHOOK_SECRET, type World, gitHubBackendEnv, signWebhook, startWorld } from "./helpers.ts";

const SESSION_SECRET = "kiln-e2e-session-secret-0123456789abcdef";

let world: World;
let backend: Backend;
let acme: FakeInstallation;
let widgets: FakeRepo;
let alice: KilnClient;
let aliceToken: string;
let bobToken: string;
let repo: RepoRecord;
let taskId: string;
const clients: KilnClient[] = [];

function cookieFrom(response: Response, name: string): { value: string; attributes: string } {
  for (const line of response.headers.getSetCookie()) {
    const [pair = "", ...rest] = line.split(";");
    const [key, ...value] = pair.split("=");
    if (key?.trim() === name) return { value: value.join("=").trim(), attributes: rest.join(";") };
  }
  throw new Error(`no ${name} cookie in ${JSON.stringify(response.headers.getSetCookie())}`);
}

/** The browser's sign-in, by hand: login (state cookie) → "GitHub" → callback (session cookie) → me. */
async function signIn(login: string): Promise<string> {
  const start = await fetch(`${backend.url}/v1/auth/github/login`, { redirect: "manual" });
  expect(start.status).toBe(302);
  const authorize = new URL(start.headers.get("location") ?? "");
  expect(authorize.pathname).toBe("/login/oauth/authorize");
  expect(authorize.searchParams.get("client_id")).toBe(OAUTH.clientId);
  const state = cookieFrom(start, "kiln_oauth_state");
  expect(authorize.searchParams.get("state")).toBe(state.value);
  expect(state.attributes).toMatch(/HttpOnly/i);

  const code = world.fake.issueOAuthCode(login);
  const callback = await fetch(
    `${backend.url}/v1/auth/github/callback?code=${code}&state=${encodeURIComponent(state.value)}`,
    { redirect: "manual", headers: { cookie: `kiln_oauth_state=${state.value}` } },
  );
  expect(callback.status, await callback.clone().text()).toBe(302);
  const session = cookieFrom(callback, "kiln_session");
  expect(session.attributes).toMatch(/HttpOnly/i);
  expect(session.attributes).toMatch(/SameSite=Lax/i);
  expect(session.attributes).toMatch(/Path=\//i);

  const me = (await (await fetch(`${backend.url}/v1/auth/me`, { headers: { cookie: `kiln_session=${session.value}` } })).json()) as {
    user: { login: string } | null;
    orgs: string[];
    token: string | null;
  };
  expect(me.user?.login).toBe(login);
  expect(me.token).toBe(session.value);
  // The GitHub user token from the exchange never reaches the browser.
  expect(JSON.stringify(me)).not.toMatch(/ghu_/);
  return me.token!;
}

/** "ok:<value>" or "error:<code>" — never lets vitest format an actor handle (a proxy). */
async function settle(work: Promise<unknown>): Promise<string> {
  try {
    const value = await work;
    return `ok:${typeof value === "string" ? value : typeof value}`;
  } catch (error) {
    return `error:${(error as { code?: string }).code ?? String(error)}`;
  }
}

function client(token?: string): KilnClient {
  const c = createKilnClient({ endpoint: backend.url, ...(token ? { token } : {}), callTimeoutMs: 90_000 });
  clients.push(c);
  return c;
}

function webhook(event: string, deliveryId: string, payload: unknown, secret = WEBHOOK_SECRET) {
  const body = JSON.stringify(payload);
  return fetch(`${backend.url}/v1/webhooks/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": deliveryId,
      "x-hub-signature-256": signWebhook(secret, body),
    },
    body,
  });
}

function pullRequestPayload(action: string, number: number, head: string, extra: Record<string, unknown> = {}) {
  const pull = world.fake.pull(widgets.fullName, number);
  return {
    action,
    number,
    pull_request: {
      number,
      html_url: `${world.fake.url}/${widgets.fullName}/pull/${number}`,
      title: pull.title,
      state: pull.state,
      draft: false,
      merged: pull.mergedAt !== null,
      merged_at: pull.mergedAt,
      head: { ref: head, sha: pull.headSha },
      base: { ref: pull.base },
      ...extra,
    },
    repository: { id: widgets.id, full_name: widgets.fullName, default_branch: widgets.defaultBranch },
    installation: { id: acme.id },
    sender: { login: "alice", id: 1 },
  };
}

async function detail(taskIdArg = taskId): Promise<TaskDetail> {
  return alice.getTask("acme", taskIdArg);
}

beforeAll(async () => {
  world = await startWorld({ withGit: true });
  acme = world.fake.addInstallation({ account: "acme" });
  const globex = world.fake.addInstallation({ account: "globex" });
  widgets = await world.fake.addRepo({ installationId: acme.id, owner: "acme", name: "widgets", files: { "README.md": "# widgets\n" } });
  await world.fake.addRepo({ installationId: globex.id, owner: "globex", name: "secret-plans" });
  world.fake.addUser({ login: "alice", name: "Alice", installationIds: [acme.id] });
  world.fake.addUser({ login: "bob", name: "Bob", installationIds: [globex.id] });
  backend = await startBackend({
    env: {
      ...gitHubBackendEnv(world, SESSION_SECRET),
    },
  });
  aliceToken = await signIn("alice");
  bobToken = await signIn("bob");
  alice = client(aliceToken);
}, 120_000);

afterAll(async () => {
  for (const c of clients) await c.dispose();
  await backend?.destroy();
  await world?.close();
});

describe("sign-in", () => {
  test("config and session say auth is on; orgs are the user's installations", async () => {
    const config = (await (await fetch(`${backend.url}/v1/config`)).json()) as Record<string, unknown>;
    expect(config).toMatchObject({ authEnabled: true, githubConfigured: true });
    expect(await alice.getSession()).toMatchObject({ authEnabled: true, user: { login: "alice" }, orgs: ["acme"] });
    expect(await client(bobToken).getSession()).toMatchObject({ user: { login: "bob" }, orgs: ["globex"] });
    // Signed out: no user, no token, a sign-in URL.
    const anonymous = await client().getSession();
    expect(anonymous).toMatchObject({ authEnabled: true, user: null, orgs: [], signInUrl: "/v1/auth/github/login" });
  });

  test("a callback with a state that does not match the cookie is refused", async () => {
    const code = world.fake.issueOAuthCode("alice");
    const response = await fetch(`${backend.url}/v1/auth/github/callback?code=${code}&state=forged-state-123`, {
      redirect: "manual",
      headers: { cookie: "kiln_oauth_state=another-state-456" },
    });
    expect(response.status).toBe(400);
    expect(response.headers.getSetCookie().some((c) => c.startsWith("kiln_session="))).toBe(false);
  });

  test("logout clears the cookie", async () => {
    const response = await fetch(`${backend.url}/v1/auth/logout`, { method: "POST" });
    expect(response.status).toBe(204);
    expect(cookieFrom(response, "kiln_session").attributes).toMatch(/Max-Age=0/i);
  });
});

describe("access control", () => {
  test("without a token, with a forged token, and across orgs: unauthorized / forbidden", async () => {
    const expectCode = async (work: Promise<unknown>, code: string) => {
      const error = await work.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(KilnError);
      expect((error as KilnError).code).toBe(code);
    };
    await expectCode(client().listTasks("acme"), "unauthorized");
    await expectCode(client(`${aliceToken.slice(0, -4)}AAAA`).listTasks("acme"), "unauthorized");
    await expectCode(client(bobToken).listTasks("acme"), "forbidden");
    await expectCode(alice.listTasks("globex"), "forbidden");
    await expectCode(alice.listGitHubRepos("globex"), "forbidden");
    await expectCode(alice.getGitHub("globex"), "forbidden");
  });
});

describe("task on a GitHub repo", () => {
  test("repo picker lists only the org's installation; adding one registers its https clone URL", async () => {
    const options = await alice.listGitHubRepos("acme");
    expect(options.map((r) => r.fullName)).toEqual(["acme/widgets"]);
    expect(options[0]).toMatchObject({ repoId: null, defaultBranch: "main", cloneUrl: world.git!.cloneUrl("acme/widgets") });
    repo = await alice.addGitHubRepo("acme", { fullName: "acme/widgets" });
    expect(repo.remoteUrl).toBe(world.git!.cloneUrl("acme/widgets"));
    expect((await alice.listGitHubRepos("acme"))[0]?.repoId).toBe(repo.repoId);
    const snapshot = await alice.getGitHub("acme");
    expect(snapshot.sync.state).toBe("idle");
    expect(snapshot.installations.map((i) => i.accountLogin)).toEqual(["acme"]);
    // Another org's repo is not reachable by name either.
    await expect(alice.addGitHubRepo("acme", { fullName: "globex/secret-plans" })).rejects.toMatchObject({ code: "not_found" });
  });

  test("provisions with a token, pushes, opens one PR (reused), and a merged webhook archives it", async () => {
    const record = await alice.createTask("acme", { repoId: repo.repoId, prompt: "write notes.txt hello" });
    taskId = record.taskId;
    const settled = await waitFor(
      "the task to settle",
      async () => {
        const d = await detail();
        if (d.task.status === "error") throw new Error(`task failed: ${d.task.error}`);
        return d.task.status === "idle" && d.transcript.some((e) => e.kind === "turn_end") ? d : null;
      },
      90_000,
      500,
    );
    expect(settled.changes.map((c) => c.path)).toContain("notes.txt");
    const branch = settled.task.branch!;

    // The clone used a token the git server checked, and the token is nowhere in the cache repo.
    expect(world.git!.requests.some((r) => r.repo === "acme/widgets" && r.authenticated && r.status === 200)).toBe(true);
    const reposDir = path.join(backend.dataDir, "repos");
    for (const dir of readdirSync(reposDir)) {
      const config = readFileSync(path.join(reposDir, dir, "config"), "utf8");
      expect(config).not.toMatch(/extraheader|authorization|ghs_|x-access-token/i);
    }

    const pushed = await alice.pushBranch("acme", { taskId });
    expect(pushed).toMatchObject({ branch, committed: true });
    const bare = world.git!.bareDir("acme/widgets");
    expect(await git(["show", `refs/heads/${branch}:notes.txt`], bare)).toBe("hello");
    expect(await git(["rev-parse", `refs/heads/${branch}`], bare)).toBe(pushed.sha);

    const pr = await alice.openPullRequest("acme", { taskId });
    expect(pr).toMatchObject({ number: 1, state: "open" });
    const again = await alice.openPullRequest("acme", { taskId });
    expect(again.number).toBe(1);
    expect(world.fake.pullCreates).toBe(1);
    expect(world.fake.pull("acme/widgets", 1)).toMatchObject({ head: branch, base: "main", state: "open" });

    const withPr = await detail();
    expect(withPr.task.pullRequest).toMatchObject({ number: 1, state: "open" });
    expect(withPr.history.map((h) => h.kind)).toEqual(expect.arrayContaining(["branch.pushed", "pr.opened", "pr.reused"]));
    await waitFor("the PR in the task summary", async () =>
      (await alice.listTasks("acme")).find((t) => t.taskId === taskId)?.pullRequest?.number === 1,
    );
    expect((await alice.getGitHub("acme")).pullRequests).toEqual([
      expect.objectContaining({ number: 1, repoFullName: "acme/widgets", taskId, state: "open" }),
    ]);

    // --- webhooks -----------------------------------------------------------------------------
    const seqBefore = (await alice.getGitHub("acme")).seq;
    const forgedBody = JSON.stringify(pullRequestPayload("closed", 1, branch, { state: "closed", merged: true, merged_at: new Date().toISOString() }));
    const forged = await fetch(`${backend.url}/v1/webhooks/github`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "pull_request",
        "x-github-delivery": "forged-1",
        "x-hub-signature-256": signWebhook("not-the-webhook-secret", forgedBody),
      },
      body: forgedBody,
    });
    expect(forged.status).toBe(401);
    const unsigned = await fetch(`${backend.url}/v1/webhooks/github`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "pull_request", "x-github-delivery": "forged-2" },
      body: forgedBody,
    });
    expect(unsigned.status).toBe(401);
    expect((await alice.getGitHub("acme")).seq).toBe(seqBefore);
    expect((await detail()).task.status).toBe("idle");

    // Duplicate delivery ids: the second delivery of "edit-1" is acknowledged and ignored.
    const first = await webhook("pull_request", "edit-1", pullRequestPayload("edited", 1, branch, { title: "Renamed once" }));
    expect(first.status).toBe(202);
    const duplicate = await webhook("pull_request", "edit-1", pullRequestPayload("edited", 1, branch, { title: "Renamed twice" }));
    expect(duplicate.status).toBe(202);
    expect((await alice.getGitHub("acme")).pullRequests[0]?.title).toBe("Renamed once");

    // Checks and reviews: the webhook names the PR; github-state re-reads checks/reviews and tells the task.
    const repository = { id: widgets.id, full_name: widgets.fullName, default_branch: widgets.defaultBranch };
    const headSha = world.fake.pull("acme/widgets", 1).headSha;
    world.fake.setCheckRun("acme/widgets", headSha, "ci", "completed", "success");
    const check = await webhook("check_run", "check-1", {
      action: "completed",
      check_run: { name: "ci", head_sha: headSha, status: "completed", conclusion: "success", pull_requests: [{ number: 1 }] },
      repository,
      installation: { id: acme.id },
    });
    expect(check.status).toBe(202);
    await waitFor("checks on the task", async () => (await detail()).task.pullRequest?.checks === "success", 30_000, 300);
    world.fake.addReview("acme/widgets", 1, "carol", "APPROVED");
    const review = await webhook("pull_request_review", "review-1", {
      ...pullRequestPayload("submitted", 1, branch),
      review: { state: "approved", user: { login: "carol" } },
    });
    expect(review.status).toBe(202);
    await waitFor("the review on the task", async () => (await detail()).task.pullRequest?.review === "approved", 30_000, 300);

    // Merged on GitHub → signed webhook → github-state → task.archiveBecause("PR #1 merged").
    world.fake.mergePull("acme/widgets", 1);
    const merged = await webhook("pull_request", "merge-1", pullRequestPayload("closed", 1, branch));
    expect(merged.status).toBe(202);
    const archived = await waitFor(
      "the merged PR to archive the task",
      async () => {
        const d = await detail();
        return d.task.status === "archived" && d.history.some((h) => h.kind === "task.archived") ? d : null;
      },
      60_000,
      300,
    );
    expect(archived.task.pullRequest).toMatchObject({ number: 1, state: "merged", checks: "success", review: "approved" });
    expect(archived.history.find((h) => h.kind === "task.archived")?.message).toBe("PR #1 merged");
    await waitFor("the archived summary", async () =>
      (await alice.listTasks("acme")).find((t) => t.taskId === taskId)?.status === "archived",
    );

    // No installation token ever reached the backend's output.
    const log = backend.log();
    for (const t of world.fake.tokens) expect(log.includes(t.token)).toBe(false);
    expect(log).not.toMatch(/gh[su]_[A-Za-z0-9]{20,}/);
  }, 180_000);

  test("a member cannot call internal actions or create task actors directly", async () => {
    const config = (await (await fetch(`${backend.url}/v1/config`)).json()) as { rivetEndpoint: string; poolName: string };
    const raw = createClient({ endpoint: config.rivetEndpoint, poolName: config.poolName, devtools: false } as Parameters<
      typeof createClient
    >[0]) as unknown as {
      task: {
        get(key: string[], opts: object): Record<string, (...args: unknown[]) => Promise<unknown>>;
        create(key: string[], opts: object): Promise<unknown>;
      };
      githubState: { getOrCreate(key: string[], opts: object): Record<string, (...args: unknown[]) => Promise<unknown>> };
      dispose(): Promise<void>;
    };
    const params = { params: { token: aliceToken } };
    try {
      const task = raw.task.get(["org", "acme", "task", taskId], params);
      await expect(task.setPullRequest!({ number: 9, url: "x", state: "open", checks: "none", review: "none" })).rejects.toMatchObject({
        code: "forbidden",
      });
      await expect(task.archiveBecause!("because I said so")).rejects.toMatchObject({ code: "forbidden" });
      const gh = raw.githubState.getOrCreate(["org", "acme", "github"], params);
      await expect(gh.receiveWebhook!({ kind: "ping", deliveryId: "x" })).rejects.toMatchObject({ code: "forbidden" });
      await expect(gh.resolveRepo!({ fullName: "acme/widgets" })).rejects.toMatchObject({ code: "forbidden" });
      // `create` skips onBeforeConnect; the task's onCreate demands the organization's create proof.
      const evil = ["org", "acme", "task", "forged-task"];
      const created = await settle(
        raw.task.create(evil, {
          ...params,
          input: {
            orgId: "acme",
            taskId: "forged-task",
            repoId: repo.repoId,
            repoName: "widgets",
            remoteUrl: repo.remoteUrl,
            prompt: "write stolen.txt x",
            title: null,
            baseBranch: "main",
            branch: null,
            agent: "mock",
            provider: "local",
            createdAt: Date.now(),
          },
        }).then(() => "created"),
      );
      // The engine accepts the create request, but onCreate refuses it (no create proof): the actor
      // never becomes ready and nothing was bootstrapped behind that key.
      expect(created).toMatch(/^(ok:created|error:)/);
      const read = await settle(raw.task.get(evil, params).getDetail!());
      expect(read).toMatch(/^error:/);
      expect((await alice.listTasks("acme")).some((t) => t.taskId === "forged-task")).toBe(false);
    } finally {
      await raw.dispose();
    }
  }, 60_000);
});
