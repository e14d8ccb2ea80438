// Opt-in smoke test against real GitHub (never in CI): the same driver calls the contract tests
// make against the fake. Read-only unless GITHUB_LIVE_ALLOW_WRITE=1.
//   GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY[_PATH], GITHUB_WEBHOOK_SECRET   the App
//   GITHUB_LIVE_REPO=owner/name                                          a repo the App is installed on
//   GITHUB_LIVE_ALLOW_WRITE=1                                            also push a branch and open (then leave) a draft PR
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { OctokitGitHubApp } from "../../src/integrations/github/app.ts";
import { loadGitHubConfig } from "../../src/integrations/github/config.ts";
import { cloneRepo, gitWithToken, pushBranch } from "../../src/integrations/github/git.ts";
import { git, TEST_GIT_IDENTITY } from "./fakes/git-server.ts";

const live = !!process.env.GITHUB_APP_ID;
const liveRepo = process.env.GITHUB_LIVE_REPO;

describe.skipIf(!live)("GitHub live (real api.github.com)", () => {
  const config = live ? loadGitHubConfig() : null;
  const driver = config ? new OctokitGitHubApp(config) : null;

  it("authenticates as the App and lists installations", async () => {
    const app = await driver!.getApp();
    expect(app.id).toBe(config!.appId);
    const installations = await driver!.listInstallations();
    expect(installations.length).toBeGreaterThan(0);
  });

  it.skipIf(!liveRepo)("reads the repo, its branches, and clones with a repo token", async () => {
    const [owner = "", repo = ""] = (liveRepo ?? "").split("/");
    const installation = await driver!.findRepoInstallation(owner, repo);
    expect(installation).not.toBeNull();
    const target = { installationId: installation!.id, owner, repo };
    const info = await driver!.getRepo(target);
    const branches = await driver!.listBranches(target);
    expect(branches.map((b) => b.name)).toContain(info.defaultBranch);
    const { token } = await driver!.createRepoToken(target);
    const refs = await gitWithToken(["ls-remote", "--heads", info.cloneUrl], {
      remoteUrl: info.cloneUrl,
      token,
      timeoutMs: 60_000,
      action: "list remote branches",
    });
    expect(refs.stdout).toContain(`refs/heads/${info.defaultBranch}`);
    expect(refs.stdout).not.toContain(token);

    if (process.env.GITHUB_LIVE_ALLOW_WRITE !== "1") return;
    const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-gh-live-"));
    try {
      const work = path.join(dir, "repo");
      await cloneRepo({ remoteUrl: info.cloneUrl, dir: work, token, depth: 1 });
      const branch = `kiln/live-smoke-${Date.now()}`;
      await git(["checkout", "--quiet", "-b", branch], work);
      await writeFile(path.join(work, "kiln-live-smoke.txt"), `${new Date().toISOString()}\n`);
      await git(["add", "-A"], work);
      await git(["commit", "--quiet", "-m", "Kiln live smoke test"], work, TEST_GIT_IDENTITY);
      await pushBranch({ cwd: work, remoteUrl: info.cloneUrl, branch, token });
      const input = { head: branch, base: info.defaultBranch, title: "Kiln live smoke test", draft: true };
      const first = await driver!.createPullRequest(target, input);
      const second = await driver!.createPullRequest(target, input);
      expect(second.pullRequest.number).toBe(first.pullRequest.number);
      const pr = await driver!.getPullRequestInfo(target, first.pullRequest.number);
      expect(pr.state).toBe("draft");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
