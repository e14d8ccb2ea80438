// The github-state actor (one per organization): the single writer of the org's GitHub data —
// installations, repositories, branches, pull requests, webhook deliveries and the sync status. It is
// synced on demand (`sync`) and kept current by verified webhooks (`receiveWebhook`, deduplicated by
// delivery id), and it tells tasks about their pull requests (PR state, checks, reviews; a closed or
// merged PR archives the task). REST calls go through the GitHubAppDriver; tokens never leave it.
import {
  DEFAULT_ORG_ID,
  GITHUB_EVENT_NAME,
  type GitHubEventBody,
  GitHubFullNameSchema,
  type GitHubInstallationRecord,
  type GitHubPullRequestRecord,
  type GitHubRepoRecord,
  type GitHubSnapshot,
  type GitHubSyncStatus,
  KilnError,
  type PullRequestInfo,
  PullRequestInfoSchema,
  TaskIdSchema,
  errorMessage,
  normalizeRemoteUrl,
  GitHubStateKeySchema,
} from "@kiln/shared";
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { actor, event } from "rivetkit";
import type { InferDatabaseClient } from "rivetkit/db";
import { db } from "rivetkit/db/drizzle";
import { z } from "zod";
import { AUTH_DISABLED } from "../../auth/actor-auth.ts";
import type { BackendDeps, GitHubDeps } from "../../deps.ts";
import { guard, validate } from "../../errors.ts";
import type { GitHubRepoTarget, GitHubRepository } from "../../integrations/github/app.ts";
import type { GitHubWebhookEvent, WebhookPullRequest, WebhookRepo } from "../../integrations/github/webhooks.ts";
import { createKeyedQueue } from "../../util/keyed-queue.ts";
import { loadMigrations } from "../../util/migrations.ts";
import * as schema from "./schema.ts";
import { named } from "../../util/db.ts";

const githubDatabase = db({ schema, migrations: loadMigrations(new URL("./drizzle/", import.meta.url)) });
type GitHubDb = InferDatabaseClient<typeof githubDatabase>;

interface Vars {
  /** The actor context captured on wake: the only context valid for background work. */
  actor: unknown;
  syncing: Promise<GitHubSyncStatus> | null;
}

interface GhCtx {
  readonly actorId: string;
  readonly key: string[];
  readonly db: GitHubDb;
  readonly vars: Vars;
  broadcast(name: string, ...args: unknown[]): void;
  client(): unknown;
  waitUntil(promise: Promise<unknown>): void;
  log: { error(message: string | Record<string, unknown>, ...rest: unknown[]): void };
}

/** Where github-state finds a repository for a task or a "register this repo" request. */
export const ResolveRepoInputSchema = z
  .object({ remoteUrl: z.string().trim().min(1).max(2000).optional(), fullName: GitHubFullNameSchema.optional() })
  .refine((v) => v.remoteUrl !== undefined || v.fullName !== undefined, "remoteUrl or fullName is required");

export interface ResolvedGitHubRepo {
  installationId: number;
  owner: string;
  name: string;
  fullName: string;
  defaultBranch: string | null;
  cloneUrl: string | null;
}

export const OpenPullRequestRequestSchema = z.object({
  taskId: TaskIdSchema,
  remoteUrl: z.string().min(1).max(2000),
  head: z.string().min(1).max(255),
  base: z.string().min(1).max(255),
  title: z.string().trim().min(1).max(256),
  body: z.string().max(65_536).optional(),
  draft: z.boolean().optional(),
});
export type OpenPullRequestRequest = z.infer<typeof OpenPullRequestRequestSchema>;

/** What the route hands over: a verified, normalised event (see integrations/github/webhooks.ts). */
const WebhookEnvelopeSchema = z.looseObject({
  deliveryId: z.string().min(1).max(128),
  kind: z.enum(["ping", "installation", "installation_repositories", "push", "pull_request", "check", "pull_request_review", "ignored"]),
});

/** Which organization a verified webhook belongs to (null: nothing to apply, e.g. ping). */
export function orgForWebhook(event: GitHubWebhookEvent, multiOrg: boolean): string | null {
  let login: string | null;
  switch (event.kind) {
    case "ping":
    case "ignored":
      return null;
    case "installation":
    case "installation_repositories":
      login = event.account?.login ?? null;
      break;
    default:
      login = event.repo.owner;
  }
  if (!multiOrg) return DEFAULT_ORG_ID;
  return login ? login.toLowerCase() : null;
}

/** Clone URLs compare without scheme noise: lower-case host, no trailing slash or .git. */
export function remoteKey(remoteUrl: string): string {
  const normalized = normalizeRemoteUrl(remoteUrl);
  try {
    const url = new URL(normalized);
    return `${url.protocol}//${url.host.toLowerCase()}${url.pathname.replace(/\/+$/, "")}`.replace(/\.git$/, "");
  } catch {
    return normalized; // not a URL (a path or scp-style ssh remote): compare as normalised text
  }
}

const INITIAL_SYNC: GitHubSyncStatus = {
  state: "never",
  phase: null,
  done: 0,
  total: 0,
  startedAt: null,
  finishedAt: null,
  lastSyncedAt: null,
  error: null,
};

type RepoRow = typeof schema.repositories.$inferSelect;
type PullRow = typeof schema.pullRequests.$inferSelect;

const toInstallation = (row: typeof schema.installations.$inferSelect): GitHubInstallationRecord => ({
  installationId: row.installationId,
  accountLogin: row.accountLogin,
  accountType: row.accountType,
  repositorySelection: (row.repositorySelection as GitHubInstallationRecord["repositorySelection"]) ?? null,
  suspended: row.suspended,
  updatedAt: row.updatedAt,
});

const toRepo = (row: RepoRow): GitHubRepoRecord => ({
  githubId: row.githubId,
  installationId: row.installationId,
  owner: row.owner,
  name: row.name,
  fullName: row.fullName,
  defaultBranch: row.defaultBranch,
  private: row.private,
  archived: row.archived,
  cloneUrl: row.cloneUrl,
  htmlUrl: row.htmlUrl,
  updatedAt: row.updatedAt,
});

const toPullInfo = (row: PullRow): PullRequestInfo => ({
  number: row.number,
  url: row.url,
  state: row.state as PullRequestInfo["state"],
  checks: row.checks as PullRequestInfo["checks"],
  review: row.review as PullRequestInfo["review"],
});

const toPull = (row: PullRow): GitHubPullRequestRecord => ({
  ...toPullInfo(row),
  repoFullName: row.repoFullName,
  title: row.title,
  headRef: row.headRef,
  headSha: row.headSha,
  baseRef: row.baseRef,
  taskId: row.taskId,
  updatedAt: row.updatedAt,
});

const emitQueue = createKeyedQueue();

function emit(c: GhCtx, body: GitHubEventBody): Promise<void> {
  return emitQueue(c.actorId, async () => {
    const rows = await c.db
      .insert(schema.meta)
      .values({ id: 1, seq: 1 })
      .onConflictDoUpdate({ target: schema.meta.id, set: { seq: sql`${schema.meta.seq} + 1` } })
      .returning({ seq: schema.meta.seq });
    const seq = rows[0]?.seq;
    if (seq !== undefined) c.broadcast(GITHUB_EVENT_NAME, { ...body, seq });
  });
}

async function readSync(c: GhCtx): Promise<{ seq: number; sync: GitHubSyncStatus }> {
  const [row] = await c.db.select().from(schema.meta).where(eq(schema.meta.id, 1));
  if (!row) return { seq: 0, sync: INITIAL_SYNC };
  return {
    seq: row.seq,
    sync: {
      state: row.syncState as GitHubSyncStatus["state"],
      phase: row.syncPhase,
      done: row.syncDone,
      total: row.syncTotal,
      startedAt: row.syncStartedAt,
      finishedAt: row.syncFinishedAt,
      lastSyncedAt: row.lastSyncedAt,
      error: row.syncError,
    },
  };
}

async function writeSync(c: GhCtx, patch: Partial<GitHubSyncStatus>): Promise<GitHubSyncStatus> {
  const { sync: current } = await readSync(c);
  const next = { ...current, ...patch };
  const values = {
    syncState: next.state,
    syncPhase: next.phase,
    syncDone: next.done,
    syncTotal: next.total,
    syncStartedAt: next.startedAt,
    syncFinishedAt: next.finishedAt,
    lastSyncedAt: next.lastSyncedAt,
    syncError: next.error,
  };
  await c.db
    .insert(schema.meta)
    .values({ id: 1, seq: 0, ...values })
    .onConflictDoUpdate({ target: schema.meta.id, set: values });
  await emit(c, { type: "sync", sync: next });
  return next;
}

async function snapshot(c: GhCtx, configured: boolean): Promise<GitHubSnapshot> {
  const [{ seq, sync }, installations, repos, pulls] = await Promise.all([
    readSync(c),
    c.db.select().from(schema.installations).orderBy(asc(schema.installations.accountLogin)),
    c.db.select().from(schema.repositories).orderBy(asc(schema.repositories.fullNameKey)),
    c.db.select().from(schema.pullRequests).orderBy(asc(schema.pullRequests.updatedAt)),
  ]);
  return {
    seq,
    orgId: c.key[1] ?? DEFAULT_ORG_ID,
    configured,
    installations: installations.map(toInstallation),
    repos: repos.map(toRepo),
    pullRequests: pulls.map(toPull),
    sync,
  };
}

async function findRepo(c: GhCtx, query: { remoteUrl?: string | undefined; fullName?: string | undefined }): Promise<RepoRow | null> {
  if (query.fullName !== undefined) {
    const [row] = await c.db.select().from(schema.repositories).where(eq(schema.repositories.fullNameKey, query.fullName.toLowerCase()));
    return row ?? null;
  }
  if (query.remoteUrl !== undefined) {
    const wanted = remoteKey(query.remoteUrl);
    const rows = await c.db.select().from(schema.repositories);
    return rows.find((r) => r.cloneUrl !== null && remoteKey(r.cloneUrl) === wanted) ?? null;
  }
  return null;
}

/** The columns every sighting of a repository knows (API listing or webhook payload). */
const repoIdentity = (installationId: number, repo: { id: number; owner: string; name: string; fullName: string }) => ({
  githubId: repo.id,
  installationId,
  owner: repo.owner,
  name: repo.name,
  fullNameKey: repo.fullName.toLowerCase(),
  fullName: repo.fullName,
  updatedAt: Date.now(),
});

async function upsertRepo(c: GhCtx, installationId: number, repo: GitHubRepository): Promise<void> {
  const values = {
    ...repoIdentity(installationId, repo),
    defaultBranch: repo.defaultBranch,
    private: repo.private,
    archived: repo.archived,
    cloneUrl: repo.cloneUrl,
    htmlUrl: repo.htmlUrl,
  };
  await writeRepo(c, values);
}

/**
 * The one write path for repository rows. A repo renamed or transferred keeps its id, so a stale row
 * holding its new (unique) name goes first; then upsert by id and announce it.
 */
async function writeRepo(
  c: GhCtx,
  values: typeof schema.repositories.$inferInsert & { githubId: number; fullNameKey: string },
): Promise<void> {
  await c.db
    .delete(schema.repositories)
    .where(and(eq(schema.repositories.fullNameKey, values.fullNameKey), sql`${schema.repositories.githubId} <> ${values.githubId}`));
  const [row] = await c.db
    .insert(schema.repositories)
    .values(values)
    .onConflictDoUpdate({ target: schema.repositories.githubId, set: values })
    .returning();
  if (row) await emit(c, { type: "repo", repo: toRepo(row) });
}

/** A repo seen only in a webhook (no clone URL/default branch yet): keep what is known. */
async function upsertWebhookRepo(c: GhCtx, installationId: number, repo: WebhookRepo): Promise<void> {
  const values = {
    ...repoIdentity(installationId, repo),
    ...(repo.defaultBranch !== null ? { defaultBranch: repo.defaultBranch } : {}),
  };
  await writeRepo(c, values);
}

async function removeRepos(c: GhCtx, githubIds: number[]): Promise<void> {
  if (githubIds.length === 0) return;
  await c.db.delete(schema.branches).where(inArray(schema.branches.githubId, githubIds));
  await c.db.delete(schema.repositories).where(inArray(schema.repositories.githubId, githubIds));
  for (const githubId of githubIds) await emit(c, { type: "repo-removed", githubId });
}

async function removeInstallation(c: GhCtx, installationId: number): Promise<void> {
  const repos = await c.db
    .select({ id: schema.repositories.githubId })
    .from(schema.repositories)
    .where(eq(schema.repositories.installationId, installationId));
  await removeRepos(
    c,
    repos.map((r) => r.id),
  );
  await c.db.delete(schema.installations).where(eq(schema.installations.installationId, installationId));
  await emit(c, { type: "installation-removed", installationId });
}

async function upsertInstallation(c: GhCtx, record: Omit<GitHubInstallationRecord, "updatedAt">): Promise<void> {
  const values = { ...record, updatedAt: Date.now() };
  const [row] = await c.db
    .insert(schema.installations)
    .values(values)
    .onConflictDoUpdate({ target: schema.installations.installationId, set: values })
    .returning();
  if (row) await emit(c, { type: "installation", installation: toInstallation(row) });
}

async function replaceBranches(c: GhCtx, githubId: number, list: Array<{ name: string; sha: string; protected: boolean }>) {
  const now = Date.now();
  await c.db.transaction(async (tx) => {
    await tx.delete(schema.branches).where(eq(schema.branches.githubId, githubId));
    if (list.length) await tx.insert(schema.branches).values(list.map((b) => ({ githubId, ...b, updatedAt: now })));
  }, named("github-replace-branches"));
}

interface TaskForGitHub {
  setPullRequest(pullRequest: PullRequestInfo | null): Promise<void>;
  archiveBecause(reason: string): Promise<void>;
}
interface OrgForGitHub {
  taskForBranch(input: { remoteUrl: string; branch: string }): Promise<string | null>;
}

const rivetCode = (error: unknown) => (error as { code?: unknown } | null)?.code;

export function makeGitHubStateActor(deps: BackendDeps) {
  const auth = deps.auth ?? AUTH_DISABLED;
  const params = () => {
    const p = auth.internalParams();
    return p ? { params: p } : {};
  };

  const requireGitHub = (): GitHubDeps => {
    if (!deps.github) throw new KilnError("unavailable", "GitHub is not configured on this backend (set GITHUB_APP_ID and friends)");
    return deps.github;
  };

  /** Installations this org covers: its own account (multi-user) or every one (single-user). */
  const inScope = (c: GhCtx, accountLogin: string | null | undefined): boolean => {
    const gh = deps.github;
    if (!gh || !gh.multiOrg) return true;
    return accountLogin != null && accountLogin.toLowerCase() === (c.key[1] ?? "").toLowerCase();
  };

  const live = (c: GhCtx): GhCtx => {
    if (!c.vars.actor) throw new KilnError("unavailable", "github-state actor is not awake yet");
    return c.vars.actor as GhCtx;
  };

  const orgOf = (c: GhCtx): OrgForGitHub => {
    const client = c.client() as { organization: { getOrCreate(key: string[], opts?: object): OrgForGitHub } };
    return client.organization.getOrCreate(["org", c.key[1] ?? DEFAULT_ORG_ID], params());
  };
  const taskOf = (c: GhCtx, taskId: string): TaskForGitHub => {
    const client = c.client() as { task: { get(key: string[], opts?: object): TaskForGitHub } };
    return client.task.get(["org", c.key[1] ?? DEFAULT_ORG_ID, "task", taskId], params());
  };

  /** Background work: runs after the action returned, on the live context, with failures logged. */
  const background = (c: GhCtx, what: string, work: (ctx: GhCtx) => Promise<void>) => {
    const ctx = live(c);
    ctx.waitUntil(
      work(ctx).then(undefined, (error: unknown) => ctx.log.error({ msg: `github-state: ${what} failed`, error: errorMessage(error) })),
    );
  };

  /** Tell the task its PR changed; archive it once when the PR closes or merges. */
  const notifyTask = async (c: GhCtx, row: PullRow): Promise<void> => {
    if (!row.taskId) return;
    const task = taskOf(c, row.taskId);
    await task.setPullRequest(toPullInfo(row));
    const closed = row.state === "merged" || row.state === "closed";
    if (closed && row.notifiedState !== row.state) {
      const reason = row.state === "merged" ? `PR #${row.number} merged` : `PR #${row.number} closed without merging`;
      try {
        await task.archiveBecause(reason);
      } catch (error) {
        // Already archived or killed by a person: nothing left to do.
        if (rivetCode(error) !== "conflict") throw error;
      }
    }
    await c.db
      .update(schema.pullRequests)
      .set({ notifiedState: row.state })
      .where(and(eq(schema.pullRequests.githubId, row.githubId), eq(schema.pullRequests.number, row.number)));
  };

  /** Re-read one PR with its checks and reviews from GitHub, store it and tell its task. */
  const refreshPull = async (c: GhCtx, target: GitHubRepoTarget, githubId: number, number: number): Promise<void> => {
    const gh = requireGitHub();
    const info = await gh.driver.getPullRequestInfo(target, number);
    const [row] = await c.db
      .update(schema.pullRequests)
      .set({ state: info.state, url: info.url, checks: info.checks, review: info.review, updatedAt: Date.now() })
      .where(and(eq(schema.pullRequests.githubId, githubId), eq(schema.pullRequests.number, number)))
      .returning();
    if (!row) return;
    await emit(c, { type: "pull-request", pullRequest: toPull(row) });
    await notifyTask(c, row);
  };

  const runSync = async (c: GhCtx): Promise<GitHubSyncStatus> => {
    const gh = requireGitHub();
    const startedAt = Date.now();
    await writeSync(c, { state: "syncing", phase: "installations", done: 0, total: 0, startedAt, finishedAt: null, error: null });
    try {
      const installations = (await gh.driver.listInstallations()).filter((i) => inScope(c, i.account?.login));
      const known = await c.db.select().from(schema.installations);
      for (const gone of known.filter((k) => !installations.some((i) => i.id === k.installationId))) {
        await removeInstallation(c, gone.installationId);
      }
      for (const i of installations) {
        await upsertInstallation(c, {
          installationId: i.id,
          accountLogin: i.account?.login ?? String(i.id),
          accountType: i.account?.type ?? "User",
          repositorySelection: i.repositorySelection,
          suspended: i.suspended,
        });
      }

      const active = installations.filter((i) => !i.suspended);
      await writeSync(c, { phase: "repositories", done: 0, total: active.length });
      const seen: Array<{ installationId: number; repo: GitHubRepository }> = [];
      for (const [index, i] of active.entries()) {
        const repos = await gh.driver.listInstallationRepos(i.id);
        for (const repo of repos) {
          await upsertRepo(c, i.id, repo);
          seen.push({ installationId: i.id, repo });
        }
        const stale = await c.db
          .select({ id: schema.repositories.githubId })
          .from(schema.repositories)
          .where(eq(schema.repositories.installationId, i.id));
        await removeRepos(
          c,
          stale.map((r) => r.id).filter((id) => !repos.some((r) => r.id === id)),
        );
        await writeSync(c, { done: index + 1 });
      }

      await writeSync(c, { phase: "branches", done: 0, total: seen.length });
      for (const [index, { installationId, repo }] of seen.entries()) {
        const list = await gh.driver.listBranches({ installationId, owner: repo.owner, repo: repo.name });
        await replaceBranches(c, repo.id, list);
        await writeSync(c, { done: index + 1 });
      }

      // Reconcile the PRs of Kiln tasks: webhooks can be missed (GitHub does not redeliver failures).
      const open = (await c.db.select().from(schema.pullRequests)).filter(
        (p) => p.taskId !== null && (p.state === "open" || p.state === "draft" || p.notifiedState !== p.state),
      );
      await writeSync(c, { phase: "pull requests", done: 0, total: open.length });
      for (const [index, pull] of open.entries()) {
        const [repo] = await c.db.select().from(schema.repositories).where(eq(schema.repositories.githubId, pull.githubId));
        if (repo) await refreshPull(c, { installationId: repo.installationId, owner: repo.owner, repo: repo.name }, pull.githubId, pull.number);
        await writeSync(c, { done: index + 1 });
      }
      const finishedAt = Date.now();
      return await writeSync(c, { state: "idle", phase: null, finishedAt, lastSyncedAt: finishedAt, error: null });
    } catch (error) {
      await writeSync(c, { state: "error", phase: null, finishedAt: Date.now(), error: errorMessage(error) });
      throw error;
    }
  };

  /** One sync at a time per org; concurrent callers share it. */
  const sync = (c: GhCtx): Promise<GitHubSyncStatus> => {
    const vars = live(c).vars;
    if (!vars.syncing) {
      vars.syncing = runSync(live(c)).finally(() => {
        vars.syncing = null;
      });
    }
    return vars.syncing;
  };

  /**
   * Find a repo. On a miss, resync first when this org never synced or its last sync is over a minute
   * old (webhooks keep it current in between; "Sync" in the UI forces one).
   */
  const resolve = async (c: GhCtx, query: z.infer<typeof ResolveRepoInputSchema>): Promise<RepoRow | null> => {
    const found = await findRepo(c, query);
    if (found && found.cloneUrl) return found;
    const { sync: status } = await readSync(c);
    if (status.state === "syncing" || status.lastSyncedAt === null || Date.now() - status.lastSyncedAt > 60_000) {
      await sync(c);
      return findRepo(c, query);
    }
    return found;
  };

  const applyPullRequest = async (c: GhCtx, repo: WebhookRepo, pr: WebhookPullRequest) => {
    const [existing] = await c.db
      .select()
      .from(schema.pullRequests)
      .where(and(eq(schema.pullRequests.githubId, repo.id), eq(schema.pullRequests.number, pr.number)));
    let taskId = existing?.taskId ?? null;
    if (!taskId) {
      const repoRow = await findRepo(c, { fullName: repo.fullName });
      if (repoRow?.cloneUrl) taskId = await orgOf(c).taskForBranch({ remoteUrl: repoRow.cloneUrl, branch: pr.headRef });
    }
    const values = {
      githubId: repo.id,
      number: pr.number,
      repoFullName: repo.fullName,
      url: pr.url,
      title: pr.title,
      state: pr.state,
      headRef: pr.headRef,
      headSha: pr.headSha,
      baseRef: pr.baseRef,
      taskId,
      updatedAt: Date.now(),
    };
    const [row] = await c.db
      .insert(schema.pullRequests)
      .values(values)
      .onConflictDoUpdate({ target: [schema.pullRequests.githubId, schema.pullRequests.number], set: values })
      .returning();
    if (!row) return null;
    await emit(c, { type: "pull-request", pullRequest: toPull(row) });
    return row;
  };

  const installationFor = async (c: GhCtx, fromEvent: number | null, repo: WebhookRepo): Promise<number | null> => {
    if (fromEvent !== null) return fromEvent;
    const row = await findRepo(c, { fullName: repo.fullName });
    return row?.installationId ?? null;
  };

  /** Apply a verified webhook to this org's rows. Returns the follow-up REST work to run in the background. */
  const applyWebhook = async (c: GhCtx, e: GitHubWebhookEvent): Promise<((ctx: GhCtx) => Promise<void>) | null> => {
    switch (e.kind) {
      case "ping":
      case "ignored":
        return null;
      case "installation": {
        if (!inScope(c, e.account?.login)) return null;
        if (e.action === "deleted") {
          await removeInstallation(c, e.installationId);
          return null;
        }
        await upsertInstallation(c, {
          installationId: e.installationId,
          accountLogin: e.account?.login ?? String(e.installationId),
          accountType: e.account?.type ?? "User",
          repositorySelection: e.repositorySelection,
          suspended: e.action === "suspend",
        });
        for (const repo of e.repositories) await upsertWebhookRepo(c, e.installationId, repo);
        // The payload lacks clone URLs and default branches: fetch the whole picture.
        return e.action === "suspend" ? null : (ctx) => sync(ctx).then(() => undefined);
      }
      case "installation_repositories": {
        if (!inScope(c, e.account?.login)) return null;
        await removeRepos(
          c,
          e.removed.map((r) => r.id),
        );
        for (const repo of e.added) await upsertWebhookRepo(c, e.installationId, repo);
        if (e.added.length === 0) return null;
        const installationId = e.installationId;
        const added = e.added;
        return async (ctx) => {
          const gh = requireGitHub();
          for (const r of added) await upsertRepo(ctx, installationId, await gh.driver.getRepo({ installationId, owner: r.owner, repo: r.name }));
        };
      }
      case "push": {
        const repoRow = await findRepo(c, { fullName: e.repo.fullName });
        if (!repoRow || e.branch === null) return null;
        if (e.deleted) {
          await c.db.delete(schema.branches).where(and(eq(schema.branches.githubId, repoRow.githubId), eq(schema.branches.name, e.branch)));
        } else {
          const values = { githubId: repoRow.githubId, name: e.branch, sha: e.after, updatedAt: Date.now() };
          await c.db
            .insert(schema.branches)
            .values(values)
            .onConflictDoUpdate({ target: [schema.branches.githubId, schema.branches.name], set: { sha: e.after, updatedAt: values.updatedAt } });
        }
        return null;
      }
      case "pull_request": {
        const row = await applyPullRequest(c, e.repo, e.pullRequest);
        if (!row?.taskId) return null;
        const installationId = await installationFor(c, e.installationId, e.repo);
        const target = installationId !== null ? { installationId, owner: e.repo.owner, repo: e.repo.name } : null;
        const { githubId, number } = row;
        return async (ctx) => {
          const [current] = await ctx.db
            .select()
            .from(schema.pullRequests)
            .where(and(eq(schema.pullRequests.githubId, githubId), eq(schema.pullRequests.number, number)));
          if (!current) return;
          // The payload is authoritative for state; checks and reviews need a read (open PRs only).
          if (target && (current.state === "open" || current.state === "draft") && e.action !== "closed") {
            await refreshPull(ctx, target, githubId, number);
          } else {
            await notifyTask(ctx, current);
          }
        };
      }
      case "pull_request_review":
      case "check": {
        const installationId = await installationFor(c, e.installationId, e.repo);
        if (installationId === null) return null;
        let numbers: number[];
        if (e.kind === "pull_request_review") {
          const row = await applyPullRequest(c, e.repo, e.pullRequest);
          numbers = row?.taskId ? [row.number] : [];
        } else {
          const rows = await c.db.select().from(schema.pullRequests).where(eq(schema.pullRequests.githubId, e.repo.id));
          numbers = rows
            .filter((r) => r.taskId !== null && (e.pullRequestNumbers.includes(r.number) || r.headSha === e.headSha))
            .map((r) => r.number);
        }
        if (numbers.length === 0) return null;
        const target = { installationId, owner: e.repo.owner, repo: e.repo.name };
        const githubId = e.repo.id;
        return async (ctx) => {
          for (const n of numbers) await refreshPull(ctx, target, githubId, n);
        };
      }
    }
  };

  return actor({
    db: githubDatabase,
    events: { [GITHUB_EVENT_NAME]: event<unknown>() },
    options: { actionTimeout: 180_000 },
    ...auth.hooksFor(GitHubStateKeySchema),
    createVars: (): Vars => ({ actor: null, syncing: null }),
    onWake: (c) => {
      c.vars.actor = c;
    },
    actions: {
      getSnapshot: async (c): Promise<GitHubSnapshot> => snapshot(c as unknown as GhCtx, deps.github != null),

      /** Full resync from GitHub (installations → repositories → branches → tracked PRs), with progress events. */
      sync: async (c): Promise<GitHubSyncStatus> => guard(() => sync(c as unknown as GhCtx)),

      /** Repositories of this org's installations; syncs first when never synced. */
      listRepos: async (c): Promise<GitHubRepoRecord[]> =>
        guard(async () => {
          const ctx = c as unknown as GhCtx;
          requireGitHub();
          if ((await readSync(ctx)).sync.lastSyncedAt === null) await sync(ctx);
          return (await ctx.db.select().from(schema.repositories).orderBy(asc(schema.repositories.fullNameKey))).map(toRepo);
        }),

      /** Internal (organization, task): the installation and names behind a clone URL or owner/name. */
      resolveRepo: async (c, input: unknown): Promise<ResolvedGitHubRepo | null> =>
        guard(async () => {
          auth.requireInternal(c, "resolveRepo");
          const query = validate(ResolveRepoInputSchema, input, "repository");
          if (!deps.github) return null;
          const row = await resolve(c as unknown as GhCtx, query);
          if (!row) return null;
          return {
            installationId: row.installationId,
            owner: row.owner,
            name: row.name,
            fullName: row.fullName,
            defaultBranch: row.defaultBranch,
            cloneUrl: row.cloneUrl,
          };
        }),

      /** Internal (the webhook route): apply a verified delivery once; follow-up REST reads run in the background. */
      receiveWebhook: async (c, input: unknown): Promise<{ duplicate: boolean }> =>
        guard(async () => {
          auth.requireInternal(c, "receiveWebhook");
          validate(WebhookEnvelopeSchema, input, "webhook event");
          const e = input as GitHubWebhookEvent;
          const ctx = c as unknown as GhCtx;
          const inserted = await ctx.db
            .insert(schema.webhookDeliveries)
            .values({ deliveryId: e.deliveryId, event: e.kind, receivedAt: Date.now() })
            .onConflictDoNothing()
            .returning({ id: schema.webhookDeliveries.deliveryId });
          if (inserted.length === 0) return { duplicate: true };
          const followUp = await applyWebhook(ctx, e);
          if (followUp) background(ctx, `${e.kind} delivery ${e.deliveryId}`, followUp);
          return { duplicate: false };
        }),

      /** Internal (task): open the PR for a task branch, or reuse the open one; returns its state. */
      openPullRequest: async (c, input: unknown): Promise<{ pullRequest: PullRequestInfo; created: boolean }> =>
        guard(async () => {
          auth.requireInternal(c, "openPullRequest");
          const data = validate(OpenPullRequestRequestSchema, input, "pull request");
          const ctx = c as unknown as GhCtx;
          const gh = requireGitHub();
          const repo = await resolve(ctx, { remoteUrl: data.remoteUrl });
          if (!repo) throw new KilnError("not_found", "this repository is not visible to the organization's GitHub App installation");
          const target = { installationId: repo.installationId, owner: repo.owner, repo: repo.name };
          const { pullRequest, created } = await gh.driver.createPullRequest(target, {
            head: data.head,
            base: data.base,
            title: data.title,
            ...(data.body !== undefined ? { body: data.body } : {}),
            ...(data.draft !== undefined ? { draft: data.draft } : {}),
          });
          const info = PullRequestInfoSchema.parse(await gh.driver.getPullRequestInfo(target, pullRequest.number));
          const values = {
            githubId: repo.githubId,
            number: pullRequest.number,
            repoFullName: repo.fullName,
            url: info.url,
            title: pullRequest.title,
            state: info.state,
            headRef: pullRequest.headRef,
            headSha: pullRequest.headSha,
            baseRef: pullRequest.baseRef,
            checks: info.checks,
            review: info.review,
            taskId: data.taskId,
            notifiedState: info.state,
            updatedAt: Date.now(),
          };
          const [row] = await ctx.db
            .insert(schema.pullRequests)
            .values(values)
            .onConflictDoUpdate({ target: [schema.pullRequests.githubId, schema.pullRequests.number], set: values })
            .returning();
          if (row) await emit(ctx, { type: "pull-request", pullRequest: toPull(row) });
          return { pullRequest: info, created };
        }),
    },
  });
}
