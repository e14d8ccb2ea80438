// GitHub contracts: what the github-state actor exposes (installations, repositories, pull requests,
// sync status) and the inputs of the GitHub operations on organizations and tasks. Installation tokens
// and other secrets never appear here: they stay inside the backend.
import { z } from "zod";
import {
  AgentIdSchema,
  OrgIdSchema,
  ProviderIdSchema,
  PullRequestInfoSchema,
  RepoIdSchema,
  TaskIdSchema,
} from "./domain.ts";
import { upsert } from "./events.ts";

export const GITHUB_EVENT_NAME = "githubEvent";

/** owner/name as GitHub spells it. */
export const GitHubFullNameSchema = z
  .string({ error: "fullName is required" })
  .trim()
  .max(201, "fullName is too long")
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9_.-]+$/, "fullName must look like owner/repo");

export const GitHubSyncStatusSchema = z.object({
  /** never: not synced yet; syncing: in progress; idle: last sync succeeded; error: last sync failed. */
  state: z.enum(["never", "syncing", "idle", "error"]),
  /** What a running sync is doing ("installations", "repositories", "branches", "pull requests"). */
  phase: z.string().nullable(),
  done: z.number().int(),
  total: z.number().int(),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  /** When the last successful sync finished. */
  lastSyncedAt: z.number().nullable(),
  error: z.string().nullable(),
});
export type GitHubSyncStatus = z.infer<typeof GitHubSyncStatusSchema>;

export const GitHubInstallationRecordSchema = z.object({
  installationId: z.number().int(),
  accountLogin: z.string(),
  /** Organization | User | Enterprise */
  accountType: z.string(),
  repositorySelection: z.enum(["all", "selected"]).nullable(),
  suspended: z.boolean(),
  updatedAt: z.number(),
});
export type GitHubInstallationRecord = z.infer<typeof GitHubInstallationRecordSchema>;

export const GitHubRepoRecordSchema = z.object({
  /** GitHub's numeric repository id. */
  githubId: z.number().int(),
  installationId: z.number().int(),
  owner: z.string(),
  name: z.string(),
  fullName: z.string(),
  /** null until known (webhooks about new installations do not carry it). */
  defaultBranch: z.string().nullable(),
  private: z.boolean(),
  archived: z.boolean(),
  /** https clone URL (no credentials). */
  cloneUrl: z.string().nullable(),
  htmlUrl: z.string().nullable(),
  updatedAt: z.number(),
});
export type GitHubRepoRecord = z.infer<typeof GitHubRepoRecordSchema>;

export const GitHubPullRequestRecordSchema = PullRequestInfoSchema.extend({
  repoFullName: z.string(),
  title: z.string(),
  headRef: z.string(),
  headSha: z.string(),
  baseRef: z.string(),
  /** The Kiln task working on the head branch, when there is one. */
  taskId: TaskIdSchema.nullable(),
  updatedAt: z.number(),
});
export type GitHubPullRequestRecord = z.infer<typeof GitHubPullRequestRecordSchema>;

/** Everything the GitHub view of an organization shows; `seq` is the last github event folded in. */
export const GitHubSnapshotSchema = z.object({
  seq: z.number().int(),
  orgId: OrgIdSchema,
  /** False when the backend has no GitHub App configured (everything else is then empty). */
  configured: z.boolean(),
  installations: z.array(GitHubInstallationRecordSchema),
  repos: z.array(GitHubRepoRecordSchema),
  pullRequests: z.array(GitHubPullRequestRecordSchema),
  sync: GitHubSyncStatusSchema,
});
export type GitHubSnapshot = z.infer<typeof GitHubSnapshotSchema>;

export const GitHubEventBodySchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("sync"), sync: GitHubSyncStatusSchema }),
  z.object({ type: z.literal("installation"), installation: GitHubInstallationRecordSchema }),
  z.object({ type: z.literal("installation-removed"), installationId: z.number().int() }),
  z.object({ type: z.literal("repo"), repo: GitHubRepoRecordSchema }),
  z.object({ type: z.literal("repo-removed"), githubId: z.number().int() }),
  z.object({ type: z.literal("pull-request"), pullRequest: GitHubPullRequestRecordSchema }),
]);
export type GitHubEventBody = z.infer<typeof GitHubEventBodySchema>;
export type GitHubEvent = GitHubEventBody & { seq: number };

/** Fold one github event into a snapshot. Pure; the caller has checked `seq`. */
export function applyGitHubEvent(snapshot: GitHubSnapshot, event: GitHubEvent): GitHubSnapshot {
  const next: GitHubSnapshot = { ...snapshot, seq: event.seq };
  switch (event.type) {
    case "sync":
      return { ...next, sync: event.sync };
    case "installation":
      return {
        ...next,
        installations: upsert(snapshot.installations, event.installation, (i) => i.installationId === event.installation.installationId),
      };
    case "installation-removed":
      return {
        ...next,
        installations: snapshot.installations.filter((i) => i.installationId !== event.installationId),
        repos: snapshot.repos.filter((r) => r.installationId !== event.installationId),
      };
    case "repo":
      return { ...next, repos: upsert(snapshot.repos, event.repo, (r) => r.githubId === event.repo.githubId) };
    case "repo-removed":
      return { ...next, repos: snapshot.repos.filter((r) => r.githubId !== event.githubId) };
    case "pull-request":
      return {
        ...next,
        pullRequests: upsert(
          snapshot.pullRequests,
          event.pullRequest,
          (p) => p.repoFullName === event.pullRequest.repoFullName && p.number === event.pullRequest.number,
        ),
      };
  }
}

/** A repository the organization's GitHub installations can see, for the "new task" repo picker. */
export const GitHubRepoOptionSchema = GitHubRepoRecordSchema.extend({
  /** The Kiln repo id when it is already registered with the organization. */
  repoId: RepoIdSchema.nullable(),
});
export type GitHubRepoOption = z.infer<typeof GitHubRepoOptionSchema>;

// --- inputs ---------------------------------------------------------------------------------------

export const AddGitHubRepoInputSchema = z.object({
  fullName: GitHubFullNameSchema,
  defaultProvider: ProviderIdSchema.optional(),
  defaultAgent: AgentIdSchema.optional(),
});
export type AddGitHubRepoInput = z.input<typeof AddGitHubRepoInputSchema>;

export const PushBranchInputSchema = z.object({
  taskId: TaskIdSchema,
  /** Commit message for uncommitted work (default: the task title). */
  message: z.string().trim().min(1).max(500).optional(),
});
export type PushBranchInput = z.input<typeof PushBranchInputSchema>;

export const PushBranchResultSchema = z.object({
  branch: z.string(),
  /** The commit now at the head of the remote branch. */
  sha: z.string(),
  /** True when uncommitted work was committed before pushing. */
  committed: z.boolean(),
});
export type PushBranchResult = z.infer<typeof PushBranchResultSchema>;

export const OpenPullRequestInputSchema = z.object({
  taskId: TaskIdSchema,
  /** Default: the task title. */
  title: z.string().trim().min(1).max(256).optional(),
  /** Default: the task prompt. */
  body: z.string().max(65_536).optional(),
  draft: z.boolean().optional(),
});
export type OpenPullRequestInput = z.input<typeof OpenPullRequestInputSchema>;
