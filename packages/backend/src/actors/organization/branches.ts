// Branch reservation in the organization's task index. Reservations of one organization+repo run one
// at a time (an actor lives in one process, so an in-memory queue is enough); the unique index on
// (repo, branch) stays the backstop. Only this short step is serialised: task-actor creation is not.
import { KilnError, branchBaseName, deriveBranchName } from "@kiln/shared";
import { and, eq, gte, lt, or } from "drizzle-orm";
import { createKeyedQueue } from "../../util/keyed-queue.ts";
import * as schema from "./schema.ts";

import type { OrgDb } from "./index.ts";
interface BranchCtx {
  actorId: string;
  db: OrgDb;
}

const reservations = createKeyedQueue();
/** Run `work` alone among the reservations of this organization actor and repository. */
export const serialiseForRepo = <T>(c: BranchCtx, repoId: string, work: () => Promise<T>): Promise<T> =>
  reservations(`${c.actorId}\u0000${repoId}`, work);

/** `kiln/<title slug>`, with the next suffix no task of the repo holds. Call inside serialiseForRepo. */
export async function freeBranchName(c: BranchCtx, repoId: string, title: string): Promise<string> {
  const base = branchBaseName(title);
  const rows = await c.db
    .select({ branch: schema.taskIndex.branch })
    .from(schema.taskIndex)
    .where(
      and(
        eq(schema.taskIndex.repoId, repoId),
        // "-" < "." in byte order: this range is every branch starting with `${base}-`.
        or(eq(schema.taskIndex.branch, base), and(gte(schema.taskIndex.branch, `${base}-`), lt(schema.taskIndex.branch, `${base}.`))),
      ),
    );
  const taken = new Set(rows.map((r) => r.branch));
  return deriveBranchName(title, (b) => taken.has(b));
}

async function holderOf(c: BranchCtx, repoId: string, branch: string): Promise<string | null> {
  const [holder] = await c.db
    .select({ taskId: schema.taskIndex.taskId })
    .from(schema.taskIndex)
    .where(and(eq(schema.taskIndex.repoId, repoId), eq(schema.taskIndex.branch, branch)));
  return holder?.taskId ?? null;
}

/**
 * Index the task with its branch: the one asked for (taken → typed `conflict`), or `kiln/<title slug>`
 * with the next free suffix. Done at creation so the provision workflow needs no round trip back.
 */
export function reserveTaskBranch(
  c: BranchCtx,
  entry: { taskId: string; repoId: string; repoName: string; requested: string | null; title: string },
): Promise<string> {
  return serialiseForRepo(c, entry.repoId, async () => {
    const conflict = (branch: string) =>
      new KilnError("conflict", `branch ${branch} is already used by another task in ${entry.repoName}`);
    if (entry.requested && (await holderOf(c, entry.repoId, entry.requested))) throw conflict(entry.requested);
    // Serialised, so the derived name is free when inserted; the retry only covers a writer outside this queue.
    for (let attempt = 0; attempt < 5; attempt++) {
      const branch = entry.requested ?? (await freeBranchName(c, entry.repoId, entry.title));
      try {
        await c.db.insert(schema.taskIndex).values({ taskId: entry.taskId, repoId: entry.repoId, branch, createdAt: Date.now() });
        return branch;
      } catch (error) {
        if (!(await holderOf(c, entry.repoId, branch))) throw error; // not a branch clash
        if (entry.requested) throw conflict(branch);
      }
    }
    throw new KilnError("conflict", `no free branch name for "${entry.title}" in ${entry.repoName} (concurrent writers); try again`);
  });
}

/** Legacy tasks (created before createTask reserved branches) get their branch here, in the same queue. */
export function reserveLegacyBranch(c: BranchCtx, taskId: string, repoId: string, title: string): Promise<string> {
  return serialiseForRepo(c, repoId, async () => {
    const [entry] = await c.db.select().from(schema.taskIndex).where(eq(schema.taskIndex.taskId, taskId));
    if (!entry) throw new KilnError("not_found", `task ${taskId} is not in the index`);
    if (entry.branch) return entry.branch;
    const branch = await freeBranchName(c, repoId, title);
    await c.db.update(schema.taskIndex).set({ branch }).where(eq(schema.taskIndex.taskId, taskId));
    return branch;
  });
}
