// The task's GitHub operations: clone credentials for its sandbox, push its branch and open (or reuse)
// its pull request. Installation tokens are minted here, right before each git command, from the
// installation github-state resolves for the task's repo; they never reach the actor's tables, events,
// history or logs. Pull-request REST calls and PR rows belong to github-state.
import {
  KilnError,
  OpenPullRequestInputSchema,
  type PullRequestInfo,
  PullRequestInfoSchema,
  PushBranchInputSchema,
  type PushBranchResult,
} from "@kiln/shared";
import type { ActorAuth } from "../../auth/actor-auth.ts";
import type { BackendDeps } from "../../deps.ts";
import { validate } from "../../errors.ts";
import type { SandboxHandle, SandboxProvider } from "../../providers/types.ts";
import { shellQuote } from "../../sandbox/changes.ts";
import type { OpenPullRequestRequest, ResolvedGitHubRepo } from "../github-state/index.ts";
import { type TaskCtx, appendHistory, readTaskRow, refreshTask } from "./store.ts";

interface GitHubStateForTask {
  resolveRepo(input: { remoteUrl: string }): Promise<ResolvedGitHubRepo | null>;
  openPullRequest(input: OpenPullRequestRequest): Promise<{ pullRequest: PullRequestInfo; created: boolean }>;
}

type ClientCtx = TaskCtx & { key: string[]; client(): unknown };
type TaskRow = NonNullable<Awaited<ReturnType<typeof readTaskRow>>>;

export interface TaskGitHubOptions {
  deps: BackendDeps;
  auth: ActorAuth;
  requireLive(c: TaskCtx): Promise<TaskRow>;
  sandboxOf(c: TaskCtx): Promise<{ provider: SandboxProvider; handle: SandboxHandle }>;
  scheduleSummaryPush(c: ClientCtx): void;
}

const PUSH_TIMEOUT_MS = 5 * 60_000;

export function makeTaskGitHub(options: TaskGitHubOptions) {
  const { deps, auth } = options;

  const githubState = (c: ClientCtx): GitHubStateForTask => {
    const params = auth.internalParams();
    const client = c.client() as { githubState: { getOrCreate(key: string[], opts?: object): GitHubStateForTask } };
    return client.githubState.getOrCreate(["org", c.key[1] ?? "default", "github"], params ? { params } : {});
  };

  /** The org's installation repo behind `remoteUrl`, or null (not a GitHub repo of this org / no App). */
  const resolve = async (c: ClientCtx, remoteUrl: string): Promise<ResolvedGitHubRepo | null> => {
    if (!deps.github || !/^https?:\/\//.test(remoteUrl)) return null;
    return githubState(c).resolveRepo({ remoteUrl });
  };

  /** A token minter scoped to one repo; each call gets a token with enough life left for a clone/push. */
  const minter = (repo: ResolvedGitHubRepo, access: "read" | "write") => async (): Promise<string> => {
    if (!deps.github) throw new KilnError("unavailable", "GitHub is not configured on this backend");
    const { token } = await deps.github.driver.createRepoToken(
      { installationId: repo.installationId, owner: repo.owner, repo: repo.name },
      { permissions: { contents: access } },
    );
    return token;
  };

  /** For create-sandbox: how the provider authenticates the clone of a GitHub repo (null: anonymously). */
  const cloneAccess = async (c: ClientCtx, remoteUrl: string): Promise<(() => Promise<string>) | null> => {
    const repo = await resolve(c, remoteUrl);
    return repo ? minter(repo, "read") : null;
  };

  const requireRepo = async (c: ClientCtx, task: TaskRow): Promise<ResolvedGitHubRepo> => {
    if (!deps.github) throw new KilnError("unavailable", "GitHub is not configured on this backend");
    const repo = await resolve(c, task.remoteUrl);
    if (!repo) {
      throw new KilnError("invalid_input", `${task.repoName} is not a repository of this organization's GitHub App installation`);
    }
    return repo;
  };

  /** Commit uncommitted work (Kiln's own .kiln files excluded) and push the task branch with a fresh token. */
  const pushBranch = async (c: ClientCtx, input: unknown): Promise<PushBranchResult> => {
    const data = validate(PushBranchInputSchema, input, "push");
    const task = await options.requireLive(c);
    if (!task.branch) throw new KilnError("not_ready", "the task has no branch yet");
    const repo = await requireRepo(c, task);
    const { provider, handle } = await options.sandboxOf(c);
    if (!provider.pushBranch) throw new KilnError("unavailable", `pushing from ${provider.id} sandboxes is not supported yet`);
    const message = data.message ?? task.title;
    const commit = await provider.exec(
      handle,
      `git add -A -- . ':(exclude).kiln' && if git diff --cached --quiet; then echo KILN_NOTHING; else git commit -q -m ${shellQuote(message)} && echo KILN_COMMITTED; fi`,
      { timeoutMs: 60_000 },
    );
    if (commit.exitCode !== 0) {
      throw new KilnError("internal", `committing the task's work failed: ${(commit.stderr || commit.stdout).trim().slice(-500)}`);
    }
    const committed = commit.stdout.includes("KILN_COMMITTED");
    const { sha } = await provider.pushBranch(handle, {
      remoteUrl: task.remoteUrl,
      branch: task.branch,
      accessToken: minter(repo, "write"),
      timeoutMs: PUSH_TIMEOUT_MS,
    });
    await appendHistory(c, "branch.pushed", `Pushed ${task.branch} to ${repo.fullName} (${sha.slice(0, 7)})`, {
      branch: task.branch,
      sha,
      committed,
    });
    return { branch: task.branch, sha, committed };
  };

  /** Push, then open the PR for the task branch — or reuse the open one (github-state is idempotent). */
  const openPullRequest = async (c: ClientCtx, input: unknown): Promise<PullRequestInfo> => {
    const data = validate(OpenPullRequestInputSchema, input, "pull request");
    await pushBranch(c, { taskId: data.taskId });
    const task = await options.requireLive(c);
    if (!task.branch) throw new KilnError("not_ready", "the task has no branch yet");
    const excerpt = task.prompt.length > 2000 ? `${task.prompt.slice(0, 2000)}…` : task.prompt;
    const { pullRequest, created } = await githubState(c).openPullRequest({
      taskId: task.taskId,
      remoteUrl: task.remoteUrl,
      head: task.branch,
      base: task.baseBranch,
      title: data.title ?? task.title,
      body: data.body ?? `Opened by Kiln for task \`${task.taskId}\`.\n\n${excerpt.replace(/^/gm, "> ")}`,
      ...(data.draft !== undefined ? { draft: data.draft } : {}),
    });
    const info = PullRequestInfoSchema.parse(pullRequest);
    await refreshTask(c, { pullRequestJson: JSON.stringify(info) });
    await appendHistory(
      c,
      created ? "pr.opened" : "pr.reused",
      created ? `Opened PR #${info.number}` : `PR #${info.number} is already open for ${task.branch}`,
      { number: info.number, url: info.url },
    );
    options.scheduleSummaryPush(c);
    return info;
  };

  return { cloneAccess, pushBranch, openPullRequest };
}

/** The PR state a task accepts from github-state (validated: the call is internal, the data is still checked). */
export const TaskPullRequestSchema = PullRequestInfoSchema.nullable();
