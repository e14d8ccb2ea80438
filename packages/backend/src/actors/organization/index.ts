// The organization actor: registered repos, the task index (branch unique per repo) and the task summary
// projection. `createTask` is the only path that creates task actors.
import { createHash, randomUUID } from "node:crypto";
import {
  AddRepoInputSchema,
  CreateTaskInputSchema,
  KilnError,
  ORG_EVENT_NAME,
  type OrgEventBody,
  type OrganizationSnapshot,
  type RepoRecord,
  type SandboxInfo,
  type TaskRecord,
  type TaskSummary,
  TaskSummarySchema,
  deriveBranchName,
  normalizeRemoteUrl,
  repoNameFromUrl,
} from "@kiln/shared";
import { and, asc, eq, isNotNull, sql } from "drizzle-orm";
import { actor, event } from "rivetkit";
import type { InferDatabaseClient } from "rivetkit/db";
import { db } from "rivetkit/db/drizzle";
import { z } from "zod";
import type { BackendDeps } from "../../deps.ts";
import { guard, validate } from "../../errors.ts";
import { loadMigrations } from "../../util/migrations.ts";
import { run } from "../../util/process.ts";
import type { InitializeTaskInput } from "../task/index.ts";
import * as schema from "./schema.ts";

const orgDatabase = db({ schema, migrations: loadMigrations(new URL("./drizzle/", import.meta.url)) });
type OrgDb = InferDatabaseClient<typeof orgDatabase>;
interface OrgCtx {
  db: OrgDb;
  broadcast(name: string, ...args: unknown[]): void;
  key: string[];
  client(): unknown;
}

interface TaskHandle {
  initialize(input: InitializeTaskInput): Promise<TaskRecord>;
  getSandbox(): Promise<SandboxInfo | null>;
}
const taskHandle = (c: OrgCtx, taskId: string): TaskHandle => {
  const client = c.client() as { task: { getOrCreate(key: string[]): TaskHandle } };
  return client.task.getOrCreate(["org", orgIdOf(c), "task", taskId]);
};

const orgIdOf = (c: { key: string[] }) => c.key[1] ?? "default";

const toRepoRecord = (row: typeof schema.repos.$inferSelect): RepoRecord => ({
  repoId: row.repoId,
  name: row.name,
  remoteUrl: row.remoteUrl,
  defaultBranch: row.defaultBranch,
  defaultProvider: row.defaultProvider as RepoRecord["defaultProvider"],
  defaultAgent: row.defaultAgent as RepoRecord["defaultAgent"],
  createdAt: row.createdAt,
});

async function emitOrg(c: OrgCtx, body: OrgEventBody): Promise<void> {
  const rows = await c.db
    .insert(schema.meta)
    .values({ id: 1, seq: 1 })
    .onConflictDoUpdate({ target: schema.meta.id, set: { seq: sql`${schema.meta.seq} + 1` } })
    .returning({ seq: schema.meta.seq });
  const seq = rows[0]?.seq;
  if (seq !== undefined) c.broadcast(ORG_EVENT_NAME, { ...body, seq });
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

async function writeSummary(c: OrgCtx, summary: TaskSummary): Promise<void> {
  const json = JSON.stringify(summary);
  await c.db
    .insert(schema.taskSummaries)
    .values({ taskId: summary.taskId, summaryJson: json, updatedAt: summary.updatedAt })
    .onConflictDoUpdate({ target: schema.taskSummaries.taskId, set: { summaryJson: json, updatedAt: summary.updatedAt } });
  await emitOrg(c, { type: "summary", summary });
}

export function makeOrganizationActor(deps: BackendDeps) {
  return actor({
    db: orgDatabase,
    events: { [ORG_EVENT_NAME]: event<unknown>() },
    options: { actionTimeout: 60_000 },
    actions: {
      addRepo: async (c, input: unknown): Promise<RepoRecord> =>
        guard(async () => {
          const data = validate(AddRepoInputSchema, input, "repository");
          const remoteUrl = data.remoteUrl.replace(/\/+$/, "");
          const existing = await c.db.select().from(schema.repos).where(eq(schema.repos.remoteUrl, remoteUrl));
          if (existing[0]) return toRepoRecord(existing[0]);
          const defaultBranch = data.defaultBranch ?? (await detectDefaultBranch(remoteUrl));
          const row = {
            repoId: createHash("sha1").update(normalizeRemoteUrl(remoteUrl)).digest("hex").slice(0, 16),
            name: data.name ?? repoNameFromUrl(remoteUrl),
            remoteUrl,
            defaultBranch,
            defaultProvider: data.defaultProvider ?? deps.config.KILN_DEFAULT_PROVIDER,
            defaultAgent: data.defaultAgent ?? deps.config.KILN_DEFAULT_AGENT,
            createdAt: Date.now(),
          };
          await c.db.insert(schema.repos).values(row).onConflictDoNothing();
          const [saved] = await c.db.select().from(schema.repos).where(eq(schema.repos.repoId, row.repoId));
          if (!saved) throw new KilnError("internal", "repository was not saved");
          const record = toRepoRecord(saved);
          await emitOrg(c, { type: "repo", repo: record });
          return record;
        }),

      listRepos: async (c): Promise<RepoRecord[]> =>
        (await c.db.select().from(schema.repos).orderBy(asc(schema.repos.createdAt))).map(toRepoRecord),

      /** The only creator of task actors. Returns once the task actor has initialized. */
      createTask: async (c, input: unknown): Promise<TaskRecord> =>
        guard(async () => {
          const data = validate(CreateTaskInputSchema, input, "task");
          const [repo] = await c.db.select().from(schema.repos).where(eq(schema.repos.repoId, data.repoId));
          if (!repo) throw new KilnError("not_found", `repository ${data.repoId} is not registered`);
          const taskId = randomUUID();
          const branch = data.branch ?? null;
          try {
            await c.db.insert(schema.taskIndex).values({ taskId, repoId: repo.repoId, branch, createdAt: Date.now() });
          } catch (error) {
            const taken = branch
              ? await c.db
                  .select()
                  .from(schema.taskIndex)
                  .where(and(eq(schema.taskIndex.repoId, repo.repoId), eq(schema.taskIndex.branch, branch)))
              : [];
            if (taken.length) throw new KilnError("conflict", `branch ${branch} is already used by another task in ${repo.name}`);
            throw error;
          }
          let record: TaskRecord;
          try {
            record = await taskHandle(c, taskId).initialize({
              orgId: orgIdOf(c),
              taskId,
              repoId: repo.repoId,
              repoName: repo.name,
              remoteUrl: repo.remoteUrl,
              prompt: data.prompt,
              title: data.title ?? null,
              baseBranch: data.baseBranch ?? repo.defaultBranch,
              branch,
              agent: data.agent ?? (repo.defaultAgent as TaskRecord["agent"]),
              provider: data.provider ?? (repo.defaultProvider as TaskRecord["provider"]),
            });
          } catch (error) {
            // Nothing half-made stays behind: release the index entry (and the branch with it).
            await c.db.delete(schema.taskIndex).where(eq(schema.taskIndex.taskId, taskId));
            throw error;
          }
          await writeSummary(c, { ...record, changedFiles: 0, sessionCount: 0 });
          return record;
        }),

      /** ensure-name asks here: the task index is the single writer of branch reservations. */
      reserveBranch: async (c, input: unknown): Promise<string> =>
        guard(async () => {
          const data = validate(z.object({ taskId: z.string(), repoId: z.string(), title: z.string() }), input);
          const [entry] = await c.db.select().from(schema.taskIndex).where(eq(schema.taskIndex.taskId, data.taskId));
          if (!entry) throw new KilnError("not_found", `task ${data.taskId} is not in the index`);
          if (entry.branch) return entry.branch;
          const taken = new Set(
            (
              await c.db
                .select({ branch: schema.taskIndex.branch })
                .from(schema.taskIndex)
                .where(and(eq(schema.taskIndex.repoId, data.repoId), isNotNull(schema.taskIndex.branch)))
            ).map((r) => r.branch),
          );
          const branch = deriveBranchName(data.title, (b) => taken.has(b));
          await c.db.update(schema.taskIndex).set({ branch }).where(eq(schema.taskIndex.taskId, data.taskId));
          return branch;
        }),

      applyTaskSummary: async (c, input: unknown) =>
        guard(async () => {
          const summary = validate(TaskSummarySchema, input, "task summary");
          const [current] = await c.db
            .select()
            .from(schema.taskSummaries)
            .where(eq(schema.taskSummaries.taskId, summary.taskId));
          if (current && current.updatedAt > summary.updatedAt) return; // an older push arrived late
          await writeSummary(c, summary);
        }),

      listTasks: async (c): Promise<TaskSummary[]> => (await snapshot(c)).tasks,

      getSnapshot: async (c): Promise<OrganizationSnapshot> => snapshot(c),

      listSandboxes: async (c): Promise<Array<SandboxInfo & { taskId: string }>> => {
        const live = await c.db.select({ taskId: schema.taskIndex.taskId }).from(schema.taskIndex);
        const out: Array<SandboxInfo & { taskId: string }> = [];
        for (const { taskId } of live) {
          const sandbox = await taskHandle(c, taskId).getSandbox();
          if (sandbox && (sandbox.state === "running" || sandbox.state === "kept")) out.push({ ...sandbox, taskId });
        }
        return out;
      },
    },
  });
}
