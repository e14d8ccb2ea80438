// Kiln soak: a real backend (test harness: embedded engine, daemon, scripted agent) under steady
// createTask load plus a burst of 50 concurrent agent turns. Prints errors (must be 0), backend and
// engine RSS at start and end, and createTask p50/p95 per 30 s window. Exits 1 on any error.
//   bun scripts/soak.ts [--seconds 120] [--tasks 200] [--turns 50]
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { createKilnClient } from "../packages/client/src/index.ts";
import { DEFAULT_ORG_ID, KilnError, type TaskSummary } from "../packages/shared/src/index.ts";
import { makeGitRepo, startBackend } from "../packages/backend/test/harness.ts";
import { z } from "zod";

const Args = z.object({
  seconds: z.coerce.number().int().min(10).max(3600).default(120),
  tasks: z.coerce.number().int().min(1).max(2000).default(200),
  turns: z.coerce.number().int().min(0).max(500).default(50),
});
function parseArgs(argv: string[]) {
  const raw: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag !== "--seconds" && flag !== "--tasks" && flag !== "--turns") {
      throw new Error(`unknown flag ${flag} (flags: --seconds N, --tasks N, --turns N)`);
    }
    raw[flag.slice(2)] = argv[++i];
  }
  return Args.parse(raw);
}
const args = parseArgs(process.argv.slice(2));
const log = (line: string) => console.error(`[soak] ${line}`);
const org = DEFAULT_ORG_ID;
const WINDOW_MS = 30_000;
/** How long tasks may take to settle after the load stops before they count as errors. */
const SETTLE_MS = 180_000;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const describeError = (error: unknown) => (error instanceof KilnError ? `${error.code}: ${error.message}` : String(error));

function rssMiB(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Math.round(Number(match[1]) / 1024) : null;
  } catch {
    return null; // the process is gone
  }
}
function enginePid(dataDir: string): number | undefined {
  const runtime = path.join(dataDir, "engine/.rivetkit/var/engine/runtime.json");
  return existsSync(runtime) ? (JSON.parse(readFileSync(runtime, "utf8")) as { pid: number }).pid : undefined;
}

const backend = await startBackend();
const client = createKilnClient({ endpoint: backend.url });
const errors: string[] = [];
let exitCode = 1;
try {
  const repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
  const rss = () => ({ backend: rssMiB(backend.process.pid), engine: rssMiB(enginePid(backend.dataDir)) });
  const rssStart = rss();
  const t0 = Date.now();
  const creates: Array<{ at: number; ms: number }> = [];
  const taskIds: string[] = [];

  const createOne = async (i: number) => {
    const started = Date.now();
    try {
      // Half the prompts repeat: branch reservation must hand out suffixes under concurrency.
      const record = await client.createTask(org, { repoId: repo.repoId, prompt: i % 2 ? `Soak job ${i}` : "Soak job (same prompt)" });
      creates.push({ at: started - t0, ms: Date.now() - started });
      taskIds.push(record.taskId);
    } catch (error) {
      errors.push(`createTask ${i}: ${describeError(error)}`);
    }
  };

  const summaries = async (): Promise<Map<string, TaskSummary>> => new Map((await client.listTasks(org)).map((t) => [t.taskId, t]));

  /** `args.turns` concurrent agent turns, on distinct tasks that are idle now. */
  const turnBurst = async () => {
    const byId = await summaries();
    const idle = taskIds.filter((id) => byId.get(id)?.status === "idle").slice(0, args.turns);
    log(`agent turn burst on ${idle.length} idle tasks`);
    if (idle.length < args.turns) errors.push(`only ${idle.length} tasks were idle for ${args.turns} concurrent turns`);
    await Promise.all(
      idle.map(async (taskId, i) => {
        try {
          await client.sendMessage(org, { taskId, sessionId: "session-1", text: `write soak-${i}.txt turn ${i}` });
        } catch (error) {
          errors.push(`sendMessage ${taskId}: ${describeError(error)}`);
        }
      }),
    );
  };

  // Creates spread over the first 3/4 of the run in concurrent batches of 10; the turn burst half way.
  const loadMs = args.seconds * 1000;
  const batches = Math.ceil(args.tasks / 10);
  const spacing = (loadMs * 0.75) / batches;
  let burst: Promise<void> | null = null;
  for (let b = 0; b < batches; b++) {
    const due = t0 + b * spacing;
    if (Date.now() < due) await sleep(due - Date.now());
    if (!burst && Date.now() - t0 >= loadMs / 2) burst = turnBurst();
    const batch = Array.from({ length: Math.min(10, args.tasks - b * 10) }, (_, k) => createOne(b * 10 + k));
    await Promise.all(batch);
  }
  if (!burst && args.turns > 0) burst = turnBurst();
  await burst;
  if (Date.now() < t0 + loadMs) await sleep(t0 + loadMs - Date.now());

  // Every task settles to idle (nothing lost, nothing stuck); a task in error is an error.
  const settleBy = Date.now() + SETTLE_MS;
  let pending = taskIds;
  while (pending.length && Date.now() < settleBy) {
    const byId = await summaries();
    for (const id of pending) {
      const t = byId.get(id);
      if (t?.status === "error") errors.push(`task ${id} failed: ${t.error}`);
    }
    pending = pending.filter((id) => !["idle", "error"].includes(byId.get(id)?.status ?? ""));
    if (pending.length) await sleep(2000);
  }
  for (const id of pending) errors.push(`task ${id} did not settle within ${SETTLE_MS / 1000} s after the load`);
  const rssEnd = rss();

  const windows = new Map<number, number[]>();
  for (const c of creates) windows.set(Math.floor(c.at / WINDOW_MS), [...(windows.get(Math.floor(c.at / WINDOW_MS)) ?? []), c.ms]);
  console.log(`soak: ${args.seconds} s, ${args.tasks} creates (${creates.length} ok), ${args.turns} concurrent agent turns`);
  console.log(`errors: ${errors.length}`);
  for (const e of errors.slice(0, 20)) console.log(`  ${e}`);
  console.log(`RSS MiB  backend ${rssStart.backend} → ${rssEnd.backend}, engine ${rssStart.engine} → ${rssEnd.engine}`);
  console.log("createTask latency per 30 s window:");
  for (const [w, values] of [...windows].sort((a, b) => a[0] - b[0])) {
    console.log(`  ${w * 30}-${w * 30 + 30} s: n=${values.length} p50 ${percentile(values, 50)} ms, p95 ${percentile(values, 95)} ms`);
  }
  exitCode = errors.length === 0 ? 0 : 1;
} catch (error) {
  console.log(`soak aborted: ${describeError(error)}`);
} finally {
  await client.dispose();
  await backend.destroy();
}
process.exit(exitCode);
