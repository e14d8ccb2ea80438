// The organization actor: registered repos, the task index (branch unique per repo) and the task summary
// projection. `createTask` is the only path that creates task actors.
import { createHash, randomUUID } from "node:crypto";
import {
  AddGitHubRepoInputSchema,
  AddRepoInputSchema,
  CreateTaskInputSchema,
  DestroyAllSandboxesInputSchema,
  type DestroyAllSandboxesResult,
  type DestroySandboxResult,
  type GitHubRepoOption,
  type GitHubRepoRecord,
  KilnError,
  ORG_EVENT_NAME,
  type OrgEventBody,
  type OrganizationSnapshot,
  type RepoRecord,
  type SandboxInfo,
  type TaskRecord,
  type TaskSummary,
  TaskSummarySchema,
  deriveTitle,
  errorMessage,
  normalizeRemoteUrl,
  repoNameFromUrl,
  OrgKeySchema,
  RepoIdSchema,
  TaskIdSchema,
} from "@kiln/shared";
import { and, asc, eq, inArray, isNull, or, sql } from "drizzle-orm";
import { actor, event } from "rivetkit";
import type { InferDatabaseClient } from "rivetkit/db";
import { db } from "rivetkit/db/drizzle";
import { z } from "zod";
import { AUTH_DISABLED, type ActorAuth, createProofFor } from "../../auth/actor-auth.ts";
import type { BackendDeps } from "../../deps.ts";
import { guard, validate, withDeadline } from "../../errors.ts";
import { loadMigrations } from "../../util/migrations.ts";
import { createKeyedQueue } from "../../util/keyed-queue.ts";
import { run } from "../../util/process.ts";
import { type ResolvedGitHubRepo, remoteKey } from "../github-state/index.ts";
import type { InitializeTaskInput } from "../task/index.ts";
import * as schema from "./schema.ts";
import { named } from "../../util/db.ts";
import { reserveLegacyBranch, reserveTaskBranch } from "./branches.ts";

const orgDatabase = db({ schema, migrations: loadMigrations(new URL("./drizzle/", import.meta.url)) });
export type OrgDb = InferDatabaseClient<typeof orgDatabase>;
interface OrgCtx {
  actorId: string;
  db: OrgDb;
  broadcast(name: string, ...args: unknown[]): void;
  key: string[];
  client(): unknown;
}

interface TaskHandle {
  watchdog(): Promise<void>;
  getSandbox(): Promise<SandboxInfo | null>;
  destroySandbox(input: { taskId: string }): Promise<DestroySandboxResult>;
}
interface TaskAccessor {
  get(key: string[], opts?: object): TaskHandle;
  getOrCreate(key: string[], opts: { createWithInput: unknown; params?: object }): TaskHandle & {
    initialize(input: unknown): Promise<TaskRecord>;
  };
  create(key: string[], options: { input: unknown; params?: object }): Promise<TaskHandle>;
}
// Actor-to-actor calls carry the internal token when auth is on (set once by makeOrganizationActor).
let orgAuth: ActorAuth = AUTH_DISABLED;
const internalOpts = () => {
  const params = orgAuth.internalParams();
  return params ? { params } : {};
};
const taskAccessor = (c: OrgCtx) => (c.client() as { task: TaskAccessor }).task;
const taskKey = (c: OrgCtx, taskId: string) => ["org", orgIdOf(c), "task", taskId];
const taskHandle = (c: OrgCtx, taskId: string): TaskHandle => taskAccessor(c).get(taskKey(c, taskId), internalOpts());

/**
 * Create a task actor; its onCreate is `initialize`, so one round trip creates it and its bootstrap rows.
 * On a loaded host the engine now and then stalls or errors on a create that may in fact have gone
 * through (seen ~1 in 60 on 2 busy cores). Then converge through the idempotent path: getOrCreate with
 * the same input and `initialize`, which returns the existing record or bootstraps a new one.
 */
async function createTaskActor(
  c: OrgCtx & { log: { warn(o: Record<string, unknown>): void } },
  key: string[],
  input: unknown,
): Promise<void> {
  let lastError: unknown;
  try {
    await withDeadline("creating the task actor", 15_000, () => taskAccessor(c).create(key, { input, ...internalOpts() }));
    return;
  } catch (error) {
    lastError = error;
    c.log.warn({ msg: "task actor create failed; converging through getOrCreate", key: key.join("/"), error: errorMessage(error) });
  }
  // Keep converging while the action has time left (under 50-way load one attempt can take 15 s+);
  // give up with a typed error, never the engine's raw one.
  const giveUpAt = Date.now() + 35_000;
  for (let attempt = 0; attempt === 0 || Date.now() < giveUpAt; attempt++) {
    try {
      await withDeadline("creating the task actor", Math.max(5_000, Math.min(20_000, giveUpAt - Date.now())), () =>
        taskAccessor(c).getOrCreate(key, { createWithInput: input, ...internalOpts() }).initialize(input),
      );
      return;
    } catch (error) {
      lastError = error;
      c.log.warn({ msg: "task actor getOrCreate failed", key: key.join("/"), attempt, error: errorMessage(error) });
    }
  }
  if (lastError instanceof KilnError) throw lastError;
  throw new KilnError("unavailable", `the engine did not create the task actor in time (${errorMessage(lastError)}); try again`);
}

interface GitHubStateForOrg {
  resolveRepo(input: { remoteUrl?: string; fullName?: string }): Promise<ResolvedGitHubRepo | null>;
  listRepos(): Promise<GitHubRepoRecord[]>;
}
const githubOf = (c: OrgCtx): GitHubStateForOrg =>
  (c.client() as { githubState: { getOrCreate(key: string[], opts?: object): GitHubStateForOrg } }).githubState.getOrCreate(
    ["org", orgIdOf(c), "github"],
    internalOpts(),
  );

const orgIdOf = (c: { key: string[] }) => c.key[1] ?? "default";

/** A task that ended this recently is not reaped yet (its final summary may still be on the way). */
const REAP_GRACE_MS = 5 * 60_000;

interface OrgVars {
  /** The maintenance actor's reaper cron was armed since this organization woke up. */
  maintenanceArmed: boolean;
  /** The task-watch cron was armed since this organization woke up. */
  taskWatchArmed: boolean;
  /** When the task watch last woke each task (running/needs_input tasks are woken at most every minute). */
  lastWoken: Map<string, number>;
}

const TASK_WATCH = "task-watch";
/** A task whose provision workflow still has work to do: after a crash it sleeps until something wakes it. */
const PROVISIONING: ReadonlySet<string> = new Set(["queued", "provisioning"]);
/** A task with an agent turn in flight: after a crash, waking it marks the interrupted turn as such. */
const IN_TURN: ReadonlySet<string> = new Set(["running", "needs_input"]);
const IN_TURN_WAKE_INTERVAL_MS = 60_000;

interface WatchCtx extends OrgCtx {
  vars: OrgVars;
  cron: { every(o: { name: string; interval: number; action: string }): Promise<void>; delete(name: string): Promise<boolean> };
  log: { warn(o: Record<string, unknown>): void };
}

// Arming and retiring the task watch are serialised per organization (see watchTasks for why).
const taskWatchQueue = createKeyedQueue();

/**
 * One durable wake-up for all of the organization's tasks (instead of a cron per task, which costs the
 * engine an alarm set + fire + delete per task; decision 0009). Armed before a createTask or an
 * in-flight summary is acknowledged, so it survives a crash; deleted by the watch when nothing is left.
 */
async function armTaskWatch(c: WatchCtx, intervalMs: number): Promise<void> {
  if (c.vars.taskWatchArmed) return;
  await taskWatchQueue(c.actorId, async () => {
    if (c.vars.taskWatchArmed) return;
    await c.cron.every({ name: TASK_WATCH, interval: intervalMs, action: "watchTasks" });
    c.vars.taskWatchArmed = true;
  });
}

/** Tasks the watch covers, and those of them due for a wake-up now. */
async function scanTasks(c: WatchCtx, intervalMs: number): Promise<{ watched: number; due: string[] }> {
  // Runs every tick: let SQLite pick the few watched tasks instead of parsing every summary ever written.
  const status = sql<string | null>`json_extract(${schema.taskSummaries.summaryJson}, '$.status')`;
  const rows = await c.db
    .select({
      taskId: schema.taskIndex.taskId,
      createdAt: schema.taskIndex.createdAt,
      status,
      updatedAt: schema.taskSummaries.updatedAt,
    })
    .from(schema.taskIndex)
    .leftJoin(schema.taskSummaries, eq(schema.taskSummaries.taskId, schema.taskIndex.taskId))
    // No summary yet: indexed just before a crash, so still queued.
    .where(or(isNull(schema.taskSummaries.taskId), inArray(status, [...PROVISIONING, ...IN_TURN])));
  const now = Date.now();
  const due: string[] = [];
  for (const row of rows) {
    const updatedAt = row.updatedAt ?? row.createdAt;
    const stalled = IN_TURN.has(row.status ?? "queued")
      ? // Never woken since this actor started (a runner restart): due on the normal cadence (decision 0012).
        !c.vars.lastWoken.has(row.taskId) ||
        now - Math.max(updatedAt, c.vars.lastWoken.get(row.taskId) ?? 0) > IN_TURN_WAKE_INTERVAL_MS
      : now - updatedAt > 2 * intervalMs;
    if (stalled) due.push(row.taskId);
  }
  return { watched: rows.length, due };
}

/**
 * The cron target: wake every task whose workflow may be stalled (no summary change for two
 * intervals while provisioning, or a turn in flight for a minute). Waking resumes an interrupted
 * workflow; the task's own watchdog fails a step stuck past its deadline.
 */
async function watchTasks(c: WatchCtx, intervalMs: number): Promise<void> {
  const { watched, due } = await scanTasks(c, intervalMs);
  if (watched === 0) {
    await taskWatchQueue(c.actorId, async () => {
      // Clear the flag before looking again: a createTask that indexed its task before this point is
      // seen by the scan; one that checks the flag after it arms a new cron once this one is gone.
      c.vars.taskWatchArmed = false;
      if ((await scanTasks(c, intervalMs)).watched > 0) {
        c.vars.taskWatchArmed = true;
        return;
      }
      await c.cron.delete(TASK_WATCH);
      c.vars.lastWoken.clear();
    });
    return;
  }
  const now = Date.now();
  await eachLimited(due, 4, async (taskId) => {
    c.vars.lastWoken.set(taskId, now);
    try {
      await taskHandle(c, taskId).watchdog();
    } catch (error) {
      c.log.warn({ msg: "task watch could not wake a task", taskId, error: errorMessage(error) });
    }
  });
}

/**
 * Arm the organization's maintenance actor (orphan-sandbox reaper) once per wake, off the hot path:
 * the caller does not wait, and a failure is logged and retried on the next call. Only when some
 * provider can reap (local worktrees are never orphaned remotely).
 */
function armMaintenance(
  c: OrgCtx & { vars: OrgVars; waitUntil(p: Promise<unknown>): void; log: { error(o: Record<string, unknown>): void } },
  deps: BackendDeps,
): void {
  if (c.vars.maintenanceArmed) return;
  if (!Object.values(deps.providers).some((p) => p?.reapOrphans)) return;
  c.vars.maintenanceArmed = true;
  const client = c.client() as { maintenance: { getOrCreate(key: string[], opts?: object): { arm(): Promise<boolean> } } };
  const arming = client.maintenance.getOrCreate(["org", orgIdOf(c), "maintenance"], internalOpts()).arm();
  c.waitUntil(
    arming.then(undefined, (error: unknown) => {
      c.vars.maintenanceArmed = false;
      c.log.error({ msg: "arming the maintenance actor", error: errorMessage(error) });
    }),
  );
}

/** Run `work` over `items` with at most `limit` in flight. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(runners);
}

const toRepoRecord = (row: typeof schema.repos.$inferSelect): RepoRecord => ({
  repoId: row.repoId,
  name: row.name,
  remoteUrl: row.remoteUrl,
  defaultBranch: row.defaultBranch,
  defaultProvider: row.defaultProvider as RepoRecord["defaultProvider"],
  defaultAgent: row.defaultAgent as RepoRecord["defaultAgent"],
  createdAt: row.createdAt,
});

/** Bump the organization's event sequence inside `tx` (the write the event describes). */
async function nextOrgSeq(tx: Pick<OrgDb, "insert">): Promise<number> {
  const rows = await tx
    .insert(schema.meta)
    .values({ id: 1, seq: 1 })
    .onConflictDoUpdate({ target: schema.meta.id, set: { seq: sql`${schema.meta.seq} + 1` } })
    .returning({ seq: schema.meta.seq });
  const seq = rows[0]?.seq;
  if (seq === undefined) throw new KilnError("internal", "organization event sequence was not written");
  return seq;
}

async function emitOrg(c: OrgCtx, body: OrgEventBody): Promise<void> {
  c.broadcast(ORG_EVENT_NAME, { ...body, seq: await nextOrgSeq(c.db) });
}

/** Insert a repository (first registration wins for the same id) and announce it. */
async function saveRepo(c: OrgCtx, row: typeof schema.repos.$inferInsert): Promise<RepoRecord> {
  await c.db.insert(schema.repos).values(row).onConflictDoNothing();
  const [saved] = await c.db.select().from(schema.repos).where(eq(schema.repos.repoId, row.repoId));
  if (!saved) throw new KilnError("internal", "repository was not saved");
  const record = toRepoRecord(saved);
  await emitOrg(c, { type: "repo", repo: record });
  return record;
}

/** Ask the remote which branch HEAD points to; proves the URL is reachable before we store it. */
async function detectDefaultBranch(remoteUrl: string): Promise<string> {
  const result = await run("git", ["ls-remote", "--symref", remoteUrl, "HEAD"], {
    timeoutMs: 30_000,
    env: { GIT_TERMINAL_PROMPT: "0" },
  });
  if (result.exitCode !== 0) {
    const lines = result.stderr.trim().split("\n");
    const reason = (lines.find((l) => l.startsWith("fatal:")) ?? lines[0] ?? "").replace(/^fatal:\s*/, "");
    throw new KilnError("invalid_input", `cannot reach repository ${remoteUrl}: ${reason}`);
  }
  const match = /^ref: refs\/heads\/(\S+)\s+HEAD/m.exec(result.stdout);
  if (!match?.[1]) throw new KilnError("invalid_input", `repository ${remoteUrl} has no default branch (is it empty?)`);
  return match[1];
}

async function snapshot(c: OrgCtx): Promise<OrganizationSnapshot> {
  const [metaRows, repoRows, summaryRows] = await Promise.all([
    c.db.select().from(schema.meta).where(eq(schema.meta.id, 1)),
    c.db.select().from(schema.repos).orderBy(asc(schema.repos.createdAt)),
    c.db.select().from(schema.taskSummaries),
  ]);
  return {
    seq: metaRows[0]?.seq ?? 0,
    orgId: orgIdOf(c),
    repos: repoRows.map(toRepoRecord),
    tasks: summaryRows
      .map((r) => JSON.parse(r.summaryJson) as TaskSummary)
      .sort((a, b) => b.createdAt - a.createdAt),
  };
}

/** Upsert a summary and its event seq in one transaction (one commit), then broadcast it. */
async function writeSummary(c: OrgCtx, summary: TaskSummary): Promise<void> {
  const json = JSON.stringify(summary);
  const seq = await c.db.transaction(async (tx) => {
    await tx
      .insert(schema.taskSummaries)
      .values({ taskId: summary.taskId, summaryJson: json, updatedAt: summary.updatedAt })
      .onConflictDoUpdate({ target: schema.taskSummaries.taskId, set: { summaryJson: json, updatedAt: summary.updatedAt } });
    return nextOrgSeq(tx);
  }, named("org-write-summary"));
  c.broadcast(ORG_EVENT_NAME, { type: "summary", summary, seq });
}

export function makeOrganizationActor(deps: BackendDeps) {
  const auth = deps.auth ?? AUTH_DISABLED;
  orgAuth = auth;
  return actor({
    db: orgDatabase,
    events: { [ORG_EVENT_NAME]: event<unknown>() },
    options: { actionTimeout: 60_000 },
    ...auth.hooksFor(OrgKeySchema),
    createVars: (): OrgVars => ({ maintenanceArmed: false, taskWatchArmed: false, lastWoken: new Map() }),
    actions: {
      addRepo: async (c, input: unknown): Promise<RepoRecord> =>
        guard(async () => {
          const data = validate(AddRepoInputSchema, input, "repository");
          armMaintenance(c, deps);
          const remoteUrl = data.remoteUrl.replace(/\/+$/, "");
          if (auth.enabled && !/^https?:\/\//.test(remoteUrl)) {
            // Multi-user mode: paths and ssh remotes on the server are not for every signed-in user.
            throw new KilnError("forbidden", "with sign-in on, only http(s) repositories can be added (use a GitHub repository)");
          }
          const existing = await c.db.select().from(schema.repos).where(eq(schema.repos.remoteUrl, remoteUrl));
          if (existing[0]) return toRepoRecord(existing[0]);
          // A repo of the org's GitHub installation: no anonymous ls-remote (private repos would fail).
          const fromGitHub = deps.github && /^https?:\/\//.test(remoteUrl) ? await githubOf(c).resolveRepo({ remoteUrl }) : null;
          const defaultBranch = data.defaultBranch ?? fromGitHub?.defaultBranch ?? (await detectDefaultBranch(remoteUrl));
          const row = {
            repoId: createHash("sha1").update(normalizeRemoteUrl(remoteUrl)).digest("hex").slice(0, 16),
            name: data.name ?? repoNameFromUrl(remoteUrl),
            remoteUrl,
            defaultBranch,
            defaultProvider: data.defaultProvider ?? deps.config.KILN_DEFAULT_PROVIDER,
            defaultAgent: data.defaultAgent ?? deps.config.KILN_DEFAULT_AGENT,
            createdAt: Date.now(),
          };
          return saveRepo(c, row);
        }),

      listRepos: async (c): Promise<RepoRecord[]> =>
        (await c.db.select().from(schema.repos).orderBy(asc(schema.repos.createdAt))).map(toRepoRecord),

      /** The only creator of task actors. Returns once the task actor has initialized. */
      createTask: async (c, input: unknown): Promise<TaskRecord> =>
        guard(async () => {
          const data = validate(CreateTaskInputSchema, input, "task");
          armMaintenance(c, deps);
          const [repo] = await c.db.select().from(schema.repos).where(eq(schema.repos.repoId, data.repoId));
          if (!repo) throw new KilnError("not_found", `repository ${data.repoId} is not registered`);
          const taskId = randomUUID();
          const title = data.title ?? deriveTitle(data.prompt);
          const branch = await reserveTaskBranch(c, {
            taskId,
            repoId: repo.repoId,
            repoName: repo.name,
            requested: data.branch ?? null,
            title,
          });
          const init: InitializeTaskInput = {
            orgId: orgIdOf(c),
            taskId,
            repoId: repo.repoId,
            repoName: repo.name,
            remoteUrl: repo.remoteUrl,
            prompt: data.prompt,
            title: data.title ?? null,
            baseBranch: data.baseBranch ?? repo.defaultBranch,
            branch,
            orgActorId: c.actorId,
            agent: data.agent ?? (repo.defaultAgent as TaskRecord["agent"]),
            provider: data.provider ?? (repo.defaultProvider as TaskRecord["provider"]),
            createdAt: Date.now(),
          };
          await armTaskWatch(c, deps.config.KILN_WATCHDOG_INTERVAL_MS);
          try {
            // The task's onCreate is `initialize`: one round trip creates the actor and its bootstrap rows.
            await createTaskActor(c, taskKey(c, taskId), { ...init, ...createProofFor(orgAuth, taskKey(c, taskId)) });
          } catch (error) {
            // Nothing half-made stays behind: release the index entry (and the branch with it).
            await c.db.delete(schema.taskIndex).where(eq(schema.taskIndex.taskId, taskId));
            throw error;
          }
          // The same record the task wrote, built from the same input (no extra round trip to read it).
          const record: TaskRecord = {
            orgId: init.orgId,
            taskId,
            repoId: init.repoId,
            repoName: init.repoName,
            title,
            prompt: init.prompt,
            baseBranch: init.baseBranch,
            branch: init.branch,
            agent: init.agent,
            provider: init.provider,
            status: "queued",
            currentStep: null,
            error: null,
            pullRequest: null,
            createdAt: init.createdAt,
            updatedAt: init.createdAt,
          };
          await writeSummary(c, { ...record, changedFiles: 0, sessionCount: 0 });
          return record;
        }),

      /** ensure-name asks here: the task index is the single writer of branch reservations. */
      reserveBranch: async (c, input: unknown): Promise<string> =>
        guard(async () => {
          auth.requireInternal(c, "reserveBranch");
          const data = validate(z.object({ taskId: TaskIdSchema, repoId: RepoIdSchema, title: z.string().max(1000) }), input);
          return reserveLegacyBranch(c, data.taskId, data.repoId, data.title);
        }),

      applyTaskSummary: async (c, input: unknown) =>
        guard(async () => {
          auth.requireInternal(c, "applyTaskSummary");
          const summary = validate(TaskSummarySchema, input, "task summary");
          const [current] = await c.db
            .select()
            .from(schema.taskSummaries)
            .where(eq(schema.taskSummaries.taskId, summary.taskId));
          if (current && current.updatedAt > summary.updatedAt) return; // an older push arrived late
          if (PROVISIONING.has(summary.status) || IN_TURN.has(summary.status)) {
            await armTaskWatch(c, deps.config.KILN_WATCHDOG_INTERVAL_MS);
          }
          await writeSummary(c, summary);
        }),

      /** Cron target (see armTaskWatch). */
      watchTasks: async (c): Promise<void> => {
        auth.requireInternal(c, "watchTasks");
        await watchTasks(c, deps.config.KILN_WATCHDOG_INTERVAL_MS);
      },

      listTasks: async (c): Promise<TaskSummary[]> => (await snapshot(c)).tasks,

      getSnapshot: async (c): Promise<OrganizationSnapshot> => snapshot(c),

      /**
       * For the orphan reaper: ids of tasks whose sandbox Kiln still wants — every task in the index
       * (so one created moments ago counts) except archived/killed ones, plus those archived with
       * their sandbox kept, and any task whose summary changed within REAP_GRACE_MS (an archive in
       * flight may not have reported "kept" yet). Anything else labelled with this org is an orphan.
       */
      listLiveTaskIds: async (c): Promise<string[]> => {
        auth.requireInternal(c, "listLiveTaskIds");
        const [index, summaries] = await Promise.all([
          c.db.select({ taskId: schema.taskIndex.taskId }).from(schema.taskIndex),
          c.db.select().from(schema.taskSummaries),
        ]);
        const byId = new Map(summaries.map((r) => [r.taskId, JSON.parse(r.summaryJson) as TaskSummary]));
        return index
          .map((r) => r.taskId)
          .filter((taskId) => {
            const summary = byId.get(taskId);
            if (!summary) return true; // created, summary not written yet
            const ended = summary.status === "archived" || summary.status === "killed";
            return !ended || summary.sandboxState === "kept" || Date.now() - summary.updatedAt < REAP_GRACE_MS;
          });
      },

      /**
       * Seed-002 `destroyAll`: destroy every active sandbox of the organization (running, stopped or
       * kept). Live tasks end with their sandbox (killed); `keptOnly` limits it to sandboxes kept after
       * archive. Each task is attempted; failures are reported per task.
       */
      destroyAllSandboxes: async (c, input: unknown): Promise<DestroyAllSandboxesResult> =>
        guard(async () => {
          // No argument means "all"; a null or other non-object is malformed, not "all".
          const data = validate(DestroyAllSandboxesInputSchema, input === undefined ? {} : input, "destroy all");
          const index = await c.db.select({ taskId: schema.taskIndex.taskId }).from(schema.taskIndex);
          const out: DestroyAllSandboxesResult = { results: [], failed: [] };
          await eachLimited(index, 4, async ({ taskId }) => {
            try {
              const task = taskHandle(c, taskId);
              const sandbox = await task.getSandbox();
              if (!sandbox || sandbox.state === "destroyed") return;
              if (data.keptOnly && sandbox.state !== "kept") return;
              out.results.push(await task.destroySandbox({ taskId }));
            } catch (error) {
              out.failed.push({ taskId, error: errorMessage(error) });
            }
          });
          return out;
        }),

      listSandboxes: async (c): Promise<Array<SandboxInfo & { taskId: string }>> => {
        const live = await c.db.select({ taskId: schema.taskIndex.taskId }).from(schema.taskIndex);
        const out: Array<SandboxInfo & { taskId: string }> = [];
        for (const { taskId } of live) {
          const sandbox = await taskHandle(c, taskId).getSandbox();
          if (sandbox && (sandbox.state === "running" || sandbox.state === "kept")) out.push({ ...sandbox, taskId });
        }
        return out;
      },

      /** Repositories the org's GitHub App installations can see (for the repo picker); registered ones carry their repoId. */
      listGitHubRepos: async (c): Promise<GitHubRepoOption[]> =>
        guard(async () => {
          if (!deps.github) throw new KilnError("unavailable", "GitHub is not configured on this backend");
          const [repos, registered] = await Promise.all([githubOf(c).listRepos(), c.db.select().from(schema.repos)]);
          const byRemote = new Map(registered.map((r) => [remoteKey(r.remoteUrl), r.repoId]));
          return repos.map((r) => ({ ...r, repoId: r.cloneUrl ? (byRemote.get(remoteKey(r.cloneUrl)) ?? null) : null }));
        }),

      /** Register a repository of the org's GitHub installation by owner/name (https clone URL, its default branch). */
      addGitHubRepo: async (c, input: unknown): Promise<RepoRecord> =>
        guard(async () => {
          const data = validate(AddGitHubRepoInputSchema, input, "GitHub repository");
          if (!deps.github) throw new KilnError("unavailable", "GitHub is not configured on this backend");
          const repo = await githubOf(c).resolveRepo({ fullName: data.fullName });
          if (!repo?.cloneUrl) {
            throw new KilnError("not_found", `${data.fullName} is not visible to this organization's GitHub App installation`);
          }
          const existing = (await c.db.select().from(schema.repos)).find((r) => remoteKey(r.remoteUrl) === remoteKey(repo.cloneUrl!));
          if (existing) return toRepoRecord(existing);
          const row = {
            repoId: createHash("sha1").update(normalizeRemoteUrl(repo.cloneUrl)).digest("hex").slice(0, 16),
            name: repo.name,
            remoteUrl: repo.cloneUrl,
            defaultBranch: repo.defaultBranch ?? "main",
            defaultProvider: data.defaultProvider ?? deps.config.KILN_DEFAULT_PROVIDER,
            defaultAgent: data.defaultAgent ?? deps.config.KILN_DEFAULT_AGENT,
            createdAt: Date.now(),
          };
          return saveRepo(c, row);
        }),

      /** Internal (github-state): the task working on `branch` of the repo at `remoteUrl`, if any. */
      taskForBranch: async (c, input: unknown): Promise<string | null> =>
        guard(async () => {
          auth.requireInternal(c, "taskForBranch");
          const data = validate(z.object({ remoteUrl: z.string().min(1).max(2000), branch: z.string().min(1).max(255) }), input);
          const repo = (await c.db.select().from(schema.repos)).find((r) => remoteKey(r.remoteUrl) === remoteKey(data.remoteUrl));
          if (!repo) return null;
          const [entry] = await c.db
            .select({ taskId: schema.taskIndex.taskId })
            .from(schema.taskIndex)
            .where(and(eq(schema.taskIndex.repoId, repo.repoId), eq(schema.taskIndex.branch, data.branch)));
          return entry?.taskId ?? null;
        }),
    },
  });
}
