// Contract tests: the real @octokit/app (JWT signing, token minting/caching, pagination, OAuth)
// over real HTTP against the loopback fake GitHub, which verifies the JWT with the App's public key,
// enforces token expiry and scope, and schema-validates every body it sends.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PullRequestInfoSchema } from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GITHUB_API_VERSION, type GitHubRepoTarget } from "../../src/integrations/github/app.ts";
import { pushBranch } from "../../src/integrations/github/git.ts";
import { git, TEST_GIT_IDENTITY } from "./fakes/git-server.ts";
import { APP_ID, expectKilnError, generateAppKeys, OAUTH, startWorld, type World } from "./helpers.ts";

let w: World;
let orgInstallation: number;
let otherInstallation: number;
let widgets: GitHubRepoTarget;
let workdir: string;

/** Commit a change on a new branch in a fresh clone and push it with a repo token. */
async function pushNewBranch(target: GitHubRepoTarget, branch: string): Promise<string> {
  const { token } = await w.driver.createRepoToken(target);
  const dir = await mkdtemp(path.join(workdir, "wt-"));
  const remote = w.git!.cloneUrl(`${target.owner}/${target.repo}`);
  await git(["clone", "--quiet", w.git!.bareDir(`${target.owner}/${target.repo}`), dir]);
  await git(["checkout", "--quiet", "-b", branch], dir);
  await writeFile(path.join(dir, `${branch.replace(/\//g, "_")}.txt`), `change on ${branch}\n`);
  await git(["add", "-A"], dir);
  await git(["commit", "--quiet", "-m", `work on ${branch}`], dir, TEST_GIT_IDENTITY);
  const { sha } = await pushBranch({ cwd: dir, remoteUrl: remote, branch, token });
  return sha;
}

beforeAll(async () => {
  workdir = await mkdtemp(path.join(os.tmpdir(), "kiln-gh-contract-"));
  w = await startWorld({ withGit: true, maxPerPage: 2 });
  const acme = w.fake.addInstallation({ account: "acme" });
  const other = w.fake.addInstallation({ account: "other-org" });
  w.fake.addInstallation({ account: "solo-user", type: "User" });
  orgInstallation = acme.id;
  otherInstallation = other.id;
  await w.fake.addRepo({ installationId: acme.id, owner: "acme", name: "widgets" });
  await w.fake.addRepo({ installationId: acme.id, owner: "acme", name: "gadgets", defaultBranch: "trunk" });
  await w.fake.addRepo({ installationId: acme.id, owner: "acme", name: "sprockets" });
  await w.fake.addRepo({ installationId: other.id, owner: "other-org", name: "secret" });
  widgets = { installationId: acme.id, owner: "acme", repo: "widgets" };
});

afterAll(async () => {
  await w?.close();
  await rm(workdir, { recursive: true, force: true });
});

describe("App authentication (JWT)", () => {
  it("reads the App with a JWT the fake verified against the public key", async () => {
    const app = await w.driver.getApp();
    expect(app.id).toBe(APP_ID);
    expect(app.slug).toBe("kiln-test-app");
    expect(w.fake.requestsTo("GET", "/app").at(-1)?.status).toBe(200);
    expect(await w.driver.installUrl("nonce-123")).toBe(`${w.fake.url}/apps/kiln-test-app/installations/new?state=nonce-123`);
  });

  it("rejects a JWT signed with the wrong private key", async () => {
    const stranger = w.makeDriver({ privateKey: generateAppKeys().privateKeyPem });
    const before = w.fake.requestsTo("GET", "/app/installations").length;
    await expectKilnError(stranger.listInstallations(), "unauthorized", /401.*GITHUB_APP_ID/);
    const seen = w.fake.requestsTo("GET", "/app/installations").slice(before);
    expect(seen.map((r) => r.status)).toEqual([401]);
  });

  it("rejects a JWT whose issuer is another App id", async () => {
    await expectKilnError(w.makeDriver({ appId: APP_ID + 1 }).getApp(), "unauthorized", /Issuer/);
  });

  it("lists every installation across pages", async () => {
    const before = w.fake.requestsTo("GET", "/app/installations").length;
    const list = await w.driver.listInstallations();
    expect(list.map((i) => i.account?.login)).toEqual(["acme", "other-org", "solo-user"]);
    expect(list[2]?.account?.type).toBe("User");
    // maxPerPage 2 → Octokit followed the Link header to page 2.
    expect(w.fake.requestsTo("GET", "/app/installations").length - before).toBe(2);
  });

  it("finds the installation for a repo, or null", async () => {
    expect((await w.driver.findRepoInstallation("acme", "gadgets"))?.id).toBe(orgInstallation);
    expect(await w.driver.findRepoInstallation("acme", "nope")).toBeNull();
    await expectKilnError(w.driver.findRepoInstallation("acme", "../etc"), "invalid_input");
  });
});

describe("installation routes", () => {
  it("lists only the installation's repos, across pages", async () => {
    const repos = await w.driver.listInstallationRepos(orgInstallation);
    expect(repos.map((r) => r.fullName).sort()).toEqual(["acme/gadgets", "acme/sprockets", "acme/widgets"]);
    expect(repos.find((r) => r.name === "widgets")?.cloneUrl).toBe(w.git!.cloneUrl("acme/widgets"));
    const other = await w.driver.listInstallationRepos(otherInstallation);
    expect(other.map((r) => r.fullName)).toEqual(["other-org/secret"]);
  });

  it("reads a repo's default branch", async () => {
    const repo = await w.driver.getRepo({ installationId: orgInstallation, owner: "acme", repo: "gadgets" });
    expect(repo.defaultBranch).toBe("trunk");
    expect(repo.private).toBe(true);
  });

  it("cannot see another installation's repo", async () => {
    await expectKilnError(
      w.driver.getRepo({ installationId: orgInstallation, owner: "other-org", repo: "secret" }),
      "not_found",
      /404/,
    );
  });

  it("lists branches from the real bare repo", async () => {
    const sha = await pushNewBranch(widgets, "kiln/branch-list");
    const branches = await w.driver.listBranches(widgets);
    expect(branches.find((b) => b.name === "kiln/branch-list")?.sha).toBe(sha);
    expect(branches.find((b) => b.name === "main")?.protected).toBe(true);
  });

  it("mints a repo-scoped token that cannot read other repos", async () => {
    const { token, expiresAt } = await w.driver.createRepoToken(widgets);
    expect(token).toMatch(/^ghs_/);
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now() + 50 * 60_000);
    const issued = w.fake.tokens.find((t) => t.token === token)!;
    expect(issued.repositories).toEqual(["widgets"]);
    expect(issued.permissions).toEqual({ contents: "write" });
    const headers = { authorization: `token ${token}`, accept: "application/vnd.github+json" };
    const own = await fetch(`${w.fake.url}/repos/acme/widgets`, { headers, signal: AbortSignal.timeout(5000) });
    expect(own.status).toBe(200);
    const sibling = await fetch(`${w.fake.url}/repos/acme/gadgets`, { headers, signal: AbortSignal.timeout(5000) });
    expect(sibling.status).toBe(404);
    // The scoped token lacks pull_requests:write, exactly like on GitHub.
    const create = await fetch(`${w.fake.url}/repos/acme/widgets/pulls`, {
      method: "POST",
      headers,
      body: JSON.stringify({ title: "x", head: "main", base: "main" }),
      signal: AbortSignal.timeout(5000),
    });
    expect(create.status).toBe(403);
  });

  it("refuses permissions the installation was not granted", async () => {
    await expectKilnError(w.driver.createRepoToken(widgets, { permissions: { administration: "write" } }), "invalid_input", /not granted/);
  });

  it("sends the pinned API version header on every request", () => {
    const rest = w.fake.requests.filter((r) => r.route !== null && r.userAgent?.startsWith("kiln"));
    expect(rest.length).toBeGreaterThan(10);
    expect(rest.filter((r) => r.apiVersion !== GITHUB_API_VERSION)).toEqual([]);
  });
});

describe("pull requests", () => {
  it("creates a PR once: a second call returns the same PR", async () => {
    await pushNewBranch(widgets, "kiln/task-1");
    const creates = w.fake.pullCreates;
    const first = await w.driver.createPullRequest(widgets, { head: "kiln/task-1", base: "main", title: "Task 1", body: "by Kiln" });
    const second = await w.driver.createPullRequest(widgets, { head: "kiln/task-1", base: "main", title: "Task 1 again" });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.pullRequest.number).toBe(first.pullRequest.number);
    expect(second.pullRequest.url).toBe(first.pullRequest.url);
    expect(w.fake.pullCreates - creates).toBe(1);
    expect(first.pullRequest).toMatchObject({ state: "open", headRef: "kiln/task-1", baseRef: "main", title: "Task 1" });
    expect(await w.driver.findOpenPullRequest(widgets, "kiln/task-1")).toMatchObject({ number: first.pullRequest.number });
    expect(await w.driver.findOpenPullRequest(widgets, "kiln/none")).toBeNull();
  });

  it("concurrent creates for one branch end with one PR", async () => {
    await pushNewBranch(widgets, "kiln/race");
    const input = { head: "kiln/race", base: "main", title: "Race" };
    const [a, b] = await Promise.all([w.driver.createPullRequest(widgets, input), w.driver.createPullRequest(widgets, input)]);
    expect(a.pullRequest.number).toBe(b.pullRequest.number);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
    expect(w.fake.pulls.filter((p) => p.head === "kiln/race")).toHaveLength(1);
  });

  it("maps GitHub's 422 for a missing head branch", async () => {
    await expectKilnError(
      w.driver.createPullRequest(widgets, { head: "kiln/not-pushed", base: "main", title: "x" }),
      "invalid_input",
      /422 Validation Failed; head invalid/,
    );
    await expectKilnError(w.driver.createPullRequest(widgets, { head: "-bad", base: "main", title: "x" }), "invalid_input");
  });

  it("maps PR state open → draft → merged / closed, mergeable computed lazily", async () => {
    await pushNewBranch(widgets, "kiln/states");
    await pushNewBranch(widgets, "kiln/closed");
    const { pullRequest: draft } = await w.driver.createPullRequest(widgets, { head: "kiln/states", base: "main", title: "Draft", draft: true });
    expect(draft.state).toBe("draft");
    const firstRead = await w.driver.getPullRequest(widgets, draft.number);
    expect(firstRead.mergeable).toBeNull();
    expect((await w.driver.getPullRequest(widgets, draft.number)).mergeable).toBe(true);
    w.fake.pull("acme/widgets", draft.number).draft = false;
    expect((await w.driver.getPullRequest(widgets, draft.number)).state).toBe("open");
    w.fake.mergePull("acme/widgets", draft.number);
    expect(await w.driver.getPullRequest(widgets, draft.number)).toMatchObject({ state: "merged", merged: true });
    const { pullRequest: other } = await w.driver.createPullRequest(widgets, { head: "kiln/closed", base: "main", title: "Closed" });
    w.fake.closePull("acme/widgets", other.number);
    expect((await w.driver.getPullRequest(widgets, other.number)).state).toBe("closed");
    // A merged PR no longer blocks a new PR for the same branch.
    expect(await w.driver.findOpenPullRequest(widgets, "kiln/states")).toBeNull();
    await expectKilnError(w.driver.getPullRequest(widgets, 9999), "not_found");
  });

  it("summarises check runs for a ref (latest run per name)", async () => {
    const sha = await pushNewBranch(widgets, "kiln/checks");
    expect(await w.driver.getCheckStatus(widgets, sha)).toBe("none");
    w.fake.setCheckRun("acme/widgets", sha, "build", "in_progress");
    w.fake.setCheckRun("acme/widgets", sha, "lint", "completed", "success");
    expect(await w.driver.getCheckStatus(widgets, sha)).toBe("pending");
    w.fake.setCheckRun("acme/widgets", sha, "build", "completed", "failure");
    expect(await w.driver.getCheckStatus(widgets, sha)).toBe("failure");
    w.fake.setCheckRun("acme/widgets", sha, "build", "completed", "success"); // re-run fixed it
    w.fake.setCheckRun("acme/widgets", sha, "docs", "completed", "skipped");
    expect(await w.driver.getCheckStatus(widgets, sha)).toBe("success");
    // A branch name works as the ref too (the fake resolves it in the real repo).
    expect(await w.driver.getCheckStatus(widgets, "kiln/checks")).toBe("success");
  });

  it("summarises reviews like GitHub's review decision", async () => {
    await pushNewBranch(widgets, "kiln/reviews");
    const { pullRequest } = await w.driver.createPullRequest(widgets, { head: "kiln/reviews", base: "main", title: "Reviews" });
    const n = pullRequest.number;
    expect(await w.driver.getReviewState(widgets, n)).toBe("none");
    w.fake.addReview("acme/widgets", n, "ana", "COMMENTED");
    expect(await w.driver.getReviewState(widgets, n)).toBe("commented");
    w.fake.addReview("acme/widgets", n, "ana", "APPROVED");
    expect(await w.driver.getReviewState(widgets, n)).toBe("approved");
    w.fake.addReview("acme/widgets", n, "bo", "CHANGES_REQUESTED");
    expect(await w.driver.getReviewState(widgets, n)).toBe("changes_requested");
    w.fake.addReview("acme/widgets", n, "bo", "APPROVED");
    expect(await w.driver.getReviewState(widgets, n)).toBe("approved");
  });

  it("assembles the shared PullRequestInfo contract", async () => {
    const sha = await pushNewBranch(widgets, "kiln/info");
    const { pullRequest } = await w.driver.createPullRequest(widgets, { head: "kiln/info", base: "main", title: "Info" });
    w.fake.setCheckRun("acme/widgets", sha, "ci", "queued");
    w.fake.addReview("acme/widgets", pullRequest.number, "ana", "APPROVED");
    const info = await w.driver.getPullRequestInfo(widgets, pullRequest.number);
    expect(PullRequestInfoSchema.parse(info)).toEqual({
      number: pullRequest.number,
      url: `${w.fake.url}/acme/widgets/pull/${pullRequest.number}`,
      state: "open",
      checks: "pending",
      review: "approved",
    });
  });
});

describe("OAuth sign-in", () => {
  it("builds the authorize URL on the OAuth host", () => {
    const url = new URL(w.driver.oauthAuthorizeUrl({ state: "csrf-nonce-1", redirectUrl: "http://127.0.0.1:9/cb" }));
    expect(`${url.origin}${url.pathname}`).toBe(`${w.fake.url}/login/oauth/authorize`);
    expect(url.searchParams.get("client_id")).toBe(OAUTH.clientId);
    expect(url.searchParams.get("state")).toBe("csrf-nonce-1");
    expect(url.searchParams.get("redirect_uri")).toBe("http://127.0.0.1:9/cb");
  });

  it("exchanges a code for the user, their installations and orgs; a code works once", async () => {
    w.fake.addUser({ login: "ana", name: "Ana", installationIds: [orgInstallation, otherInstallation] });
    const code = w.fake.issueOAuthCode("ana");
    const session = await w.driver.exchangeOAuthCode({ code });
    expect(session.user).toMatchObject({ login: "ana", name: "Ana" });
    expect(session.token.value).toMatch(/^ghu_/);
    expect(Date.parse(session.token.expiresAt ?? "")).toBeGreaterThan(Date.now());
    expect(session.installations.map((i) => i.id)).toEqual([orgInstallation, otherInstallation]);
    expect(session.organizations.map((o) => o.login)).toEqual(["acme", "other-org"]);
    const reused = await expectKilnError(w.driver.exchangeOAuthCode({ code }), "unauthorized", /bad_verification_code/);
    expect(reused.message).not.toContain(OAUTH.clientSecret);
    expect(reused.message).not.toContain(code);
  });

  it("refuses OAuth when it is not configured", async () => {
    const noOAuth = w.makeDriver({ oauth: null });
    expect(() => noOAuth.oauthAuthorizeUrl({ state: "csrf-nonce-1" })).toThrow(/not configured/);
    await expectKilnError(noOAuth.exchangeOAuthCode({ code: "x" }), "unavailable");
  });
});

describe("error mapping and deadlines", () => {
  it("maps 5xx to unavailable, 403 to forbidden, rate limits to unavailable", async () => {
    w.fake.failNext("GET", "/repos/{owner}/{repo}", 502, "Server Error");
    await expectKilnError(w.driver.getRepo(widgets), "unavailable", /502/);
    w.fake.failNext("GET", "/repos/{owner}/{repo}", 403, "Resource not accessible by integration");
    await expectKilnError(w.driver.getRepo(widgets), "forbidden", /not accessible/);
    w.fake.failNext("GET", "/repos/{owner}/{repo}", 403, "API rate limit exceeded", { "x-ratelimit-remaining": "0" });
    await expectKilnError(w.driver.getRepo(widgets), "unavailable", /rate limit/);
    expect((await w.driver.getRepo(widgets)).name).toBe("widgets");
  });

  it("gives up after the per-request deadline", async () => {
    const slow = w.makeDriver({}, { requestTimeoutMs: 150 });
    w.fake.latencyMs = 600;
    try {
      await expectKilnError(slow.getApp(), "timeout", /did not answer in time/);
    } finally {
      w.fake.latencyMs = 0;
    }
  });

  it("reports GitHub unreachable", async () => {
    const gone = w.makeDriver({ apiUrl: "http://127.0.0.1:9" });
    await expectKilnError(gone.getApp(), "unavailable", /unreachable/);
  });

  it("validates inputs before any request", async () => {
    await expectKilnError(w.driver.getRepo({ installationId: 0, owner: "acme", repo: "widgets" }), "invalid_input");
    await expectKilnError(w.driver.getPullRequest(widgets, -1), "invalid_input");
  });
});

describe("token lifetime", () => {
  let short: World;
  let target: GitHubRepoTarget;
  beforeAll(async () => {
    short = await startWorld({ tokenTtlMs: 1500, driver: { minTokenLifetimeMs: 500 } });
    const inst = short.fake.addInstallation({ account: "acme" });
    await short.fake.addRepo({ installationId: inst.id, owner: "acme", name: "widgets" });
    target = { installationId: inst.id, owner: "acme", repo: "widgets" };
  });
  afterAll(async () => short?.close());

  it("the fake rejects an expired installation token with 401", async () => {
    const { token } = await short.driver.createRepoToken(target);
    const ok = await fetch(`${short.fake.url}/repos/acme/widgets`, {
      headers: { authorization: `token ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    expect(ok.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    const expired = await fetch(`${short.fake.url}/repos/acme/widgets`, {
      headers: { authorization: `token ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    expect(expired.status).toBe(401);
    expect(short.fake.authorizeGit(token, "acme/widgets", "read")).toBe("unauthenticated");
  });

  it("the driver replaces cached tokens that are about to expire", async () => {
    const a = await short.driver.createRepoToken(target);
    await new Promise((r) => setTimeout(r, 1100)); // < 500 ms left on a 1.5 s token
    const b = await short.driver.createRepoToken(target);
    expect(b.token).not.toBe(a.token);
    // REST calls refresh proactively too: no 401 reaches GitHub.
    await short.driver.getRepo(target);
    await new Promise((r) => setTimeout(r, 1600));
    const before = short.fake.requests.filter((r) => r.status === 401).length;
    expect((await short.driver.getRepo(target)).name).toBe("widgets");
    expect(short.fake.requests.filter((r) => r.status === 401).length).toBe(before);
  });

  it("recovers from a token GitHub revoked (one refresh, one retry)", async () => {
    await short.driver.getRepo(target);
    short.fake.tokenTtlMs = 60 * 60_000;
    await short.driver.getRepo(target); // now cached: a long-lived token
    short.fake.revokeAllTokens();
    const minted = short.fake.tokens.length;
    expect((await short.driver.getRepo(target)).name).toBe("widgets");
    expect(short.fake.tokens.length).toBe(minted + 1);
  });
});

describe("schema validation of the fake", () => {
  it("a body that breaks GitHub's schema becomes a loud 500", async () => {
    const before = w.fake.schemaViolations.length;
    w.fake.corruptNext("GET", "/repos/{owner}/{repo}", (body) => {
      delete body.default_branch;
    });
    await expectKilnError(w.driver.getRepo(widgets), "unavailable", /500 fake-github: response violates/);
    expect(w.fake.schemaViolations.splice(before)).toEqual([
      "GET /repos/{owner}/{repo} 200: / must have required property 'default_branch'",
    ]);
    const v = w.fake.validator;
    expect(v.validate("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 200, { number: 1 })).not.toEqual([]);
    expect(v.validate("POST", "/app/installations/{installation_id}/access_tokens", 201, { token: 1 })).toContainEqual(
      expect.stringMatching(/token must be string|expires_at/),
    );
  });

  it("every response in this file matched GitHub's OpenAPI description", () => {
    expect(w.fake.schemaViolations).toEqual([]);
    const checked = [...w.fake.validator.checked.keys()];
    for (const op of [
      "GET /app 200",
      "GET /app/installations 200",
      "GET /repos/{owner}/{repo}/installation 200",
      "POST /app/installations/{installation_id}/access_tokens 201",
      "GET /installation/repositories 200",
      "GET /repos/{owner}/{repo} 200",
      "GET /repos/{owner}/{repo}/branches 200",
      "GET /repos/{owner}/{repo}/pulls 200",
      "POST /repos/{owner}/{repo}/pulls 201",
      "POST /repos/{owner}/{repo}/pulls 422",
      "GET /repos/{owner}/{repo}/pulls/{pull_number} 200",
      "GET /repos/{owner}/{repo}/commits/{ref}/check-runs 200",
      "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews 200",
      "GET /user 200",
      "GET /user/installations 200",
    ]) {
      expect(checked).toContain(op);
    }
  });

  it("no token, key or client secret reached Octokit's log", () => {
    const secrets = [...w.fake.tokens.map((t) => t.token), OAUTH.clientSecret, w.keys.privateKeyPem.split("\n")[1]!];
    for (const line of w.logs) for (const s of secrets) expect(line).not.toContain(s);
  });
});
