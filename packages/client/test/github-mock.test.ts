// The mock client's GitHub and sign-in surface: same shapes and rules as the backend, in memory.
import { type GitHubSnapshot, KilnError, type TaskDetail } from "@kiln/shared";
import { afterEach, describe, expect, it } from "vitest";
import { createMockKilnClient } from "../src/mock.ts";
import type { KilnClient } from "../src/types.ts";

const ORG = "default";
let client: KilnClient;

afterEach(async () => {
  await client.dispose();
});

function waitFor<T>(subscribe: (cb: (v: T) => void) => { unsubscribe(): void }, done: (v: T) => boolean, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error("timed out"));
    }, ms);
    const sub = subscribe((v) => {
      if (!done(v)) return;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve(v);
    });
  });
}

describe("mock GitHub", () => {
  it("single-user session; repo picker; add by name; unknown repos are not_found", async () => {
    client = createMockKilnClient({ stepDelayMs: 5 });
    expect(await client.getSession()).toMatchObject({ authEnabled: false, githubConfigured: true, orgs: ["default"] });
    const options = await client.listGitHubRepos(ORG);
    expect(options.map((r) => r.fullName)).toEqual(["acme/widgets", "acme/gadgets", "acme/docs"]);
    expect(options.every((r) => r.repoId === null)).toBe(true);
    const repo = await client.addGitHubRepo(ORG, { fullName: "acme/gadgets" });
    expect(repo).toMatchObject({ name: "gadgets", defaultBranch: "trunk", remoteUrl: "https://github.com/acme/gadgets.git" });
    expect((await client.listGitHubRepos(ORG)).find((r) => r.fullName === "acme/gadgets")?.repoId).toBe(repo.repoId);
    await expect(client.addGitHubRepo(ORG, { fullName: "globex/secret" })).rejects.toMatchObject({ code: "not_found" });
    await expect(client.addGitHubRepo(ORG, { fullName: "not a name" })).rejects.toBeInstanceOf(KilnError);
  });

  it("sync reports progress to subscribers and ends idle", async () => {
    client = createMockKilnClient({ stepDelayMs: 5 });
    const states: string[] = [];
    const sub = client.subscribeGitHub(ORG, (s: GitHubSnapshot) => states.push(`${s.sync.state}:${s.sync.done}/${s.sync.total}`));
    const result = await client.syncGitHub(ORG);
    sub.unsubscribe();
    expect(result.state).toBe("idle");
    expect(states).toContain("syncing:0/3");
    expect(states).toContain("syncing:3/3");
    expect(states.at(-1)).toBe("idle:3/3");
  });

  it("push and open a PR (reused the second time); the PR shows on the task and its summary", async () => {
    client = createMockKilnClient({ stepDelayMs: 5 });
    const repo = await client.addGitHubRepo(ORG, { fullName: "acme/widgets" });
    const task = await client.createTask(ORG, { repoId: repo.repoId, prompt: "write notes.txt hello" });
    await waitFor<TaskDetail>((cb) => client.subscribeTask(ORG, task.taskId, cb), (d) => d.task.status === "idle" && d.changes.length > 0);
    const pushed = await client.pushBranch(ORG, { taskId: task.taskId });
    expect(pushed).toMatchObject({ committed: true });
    expect(pushed.sha).toHaveLength(40);
    const pr = await client.openPullRequest(ORG, { taskId: task.taskId });
    expect(pr).toMatchObject({ number: 1, state: "open", url: "https://github.com/acme/widgets/pull/1" });
    expect((await client.openPullRequest(ORG, { taskId: task.taskId })).number).toBe(1);
    const detail = await client.getTask(ORG, task.taskId);
    expect(detail.history.map((h) => h.kind)).toEqual(expect.arrayContaining(["branch.pushed", "pr.opened", "pr.reused"]));
    expect((await client.listTasks(ORG)).find((t) => t.taskId === task.taskId)?.pullRequest?.number).toBe(1);
  });
});
