// Kiln benchmark: prints figures, each with its ratio to the floor it cannot beat. Not a test: targets
// are read by people (research/benchmarks.md), not asserted.
//   bun scripts/bench.ts [--tasks 200] [--agent-tasks 20] [--json]
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, chmodSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { createKilnClient } from "../packages/client/src/index.ts";
import { DEFAULT_ORG_ID, type TaskDetail } from "../packages/shared/src/index.ts";
import { freePort, makeGitRepo, startBackend, tempDir } from "../packages/backend/test/harness.ts";
import { createClient } from "rivetkit/client";
import { z } from "zod";

const Args = z.object({
  tasks: z.coerce.number().int().min(10).max(2000).default(200),
  agentTasks: z.coerce.number().int().min(5).max(200).default(20),
  json: z.boolean().default(false),
});
function parseArgs(argv: string[]) {
  const raw: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--json") raw.json = true;
    else if (arg === "--tasks") raw.tasks = argv[++i];
    else if (arg === "--agent-tasks") raw.agentTasks = argv[++i];
    else throw new Error(`unknown flag ${arg} (flags: --tasks N, --agent-tasks N, --json)`);
  }
  return Args.parse(raw);
}
const args = parseArgs(process.argv.slice(2));

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};
const stats = (values: number[]) => ({ n: values.length, p50: percentile(values, 50), p95: percentile(values, 95) });
type Stats = ReturnType<typeof stats>;
const ms = (n: number) => `${n.toFixed(1)} ms`;
/** Failed operations are reported next to the figures, never hidden in them. */
const failures = { floorCreate: [] as string[], createTask: [] as string[] };
const log = (line: string) => console.error(`[bench] ${line}`);

// ---- Floors ----------------------------------------------------------------------------------------

/** A bare RivetKit actor: create + one action, and a broadcast round trip, served like the backend. */
async function bareActorFloor(): Promise<{ createAndAction: Stats; createAndActionFirst100: Stats; broadcast: Stats }> {
  const enginePort = 40000 + Math.floor(Math.random() * 10000);
  const storage = tempDir("bench-floor");
  const server = spawn("bun", ["scripts/bench-floor-actor.ts"], {
    env: { ...process.env, BENCH_ENGINE_PORT: String(enginePort), BENCH_STORAGE: storage },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("floor actor server did not start in 60 s")), 60_000);
    server.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.once("exit", (code) => reject(new Error(`floor actor server exited (${code})`)));
  });
  type Bare = { bump(): Promise<number>; connect(): { on(e: string, cb: () => void): void; ready: Promise<void>; bump(): Promise<number>; dispose(): Promise<void> } };
  const client = createClient({ endpoint: `http://127.0.0.1:${enginePort}`, poolName: "bench-floor" } as never) as unknown as {
    bare: { getOrCreate(key: string[]): Bare; create(key: string[]): Promise<Bare> };
    dispose(): Promise<void>;
  };
  try {
    const createAndAction: number[] = [];
    for (let i = 0; i < 5; i++) await client.bare.getOrCreate([`warm-${i}`]).bump(); // warm-up
    // The fastest way RivetKit offers to make a new actor and call it once (create beats getOrCreate).
    // As many as createTask gets, back to back like it: over a sustained run the engine also pays for
    // the earlier actors (awake, then going to sleep), and a floor measured without that is no floor.
    for (let i = 0; i < args.tasks; i++) {
      const t0 = performance.now();
      try {
        const handle = await client.bare.create([`a-${i}-${Math.random()}`]);
        await handle.bump();
        createAndAction.push(performance.now() - t0);
      } catch (error) {
        failures.floorCreate.push(`${(performance.now() - t0).toFixed(0)} ms: ${String(error).slice(0, 120)}`);
      }
    }
    const conn = client.bare.getOrCreate(["broadcast"]).connect();
    const received: number[] = [];
    conn.on("bumped", () => received.push(performance.now()));
    await conn.ready;
    await conn.bump();
    const broadcast: number[] = [];
    for (let i = 0; i < 50; i++) {
      const before = received.length;
      const t0 = performance.now();
      await conn.bump();
      while (received.length === before) await new Promise((r) => setTimeout(r, 1));
      broadcast.push(received.at(-1)! - t0);
    }
    await conn.dispose();
    return { createAndAction: stats(createAndAction), createAndActionFirst100: stats(createAndAction.slice(0, 100)), broadcast: stats(broadcast) };
  } finally {
    await client.dispose();
    server.kill("SIGKILL");
    try {
      const runtime = JSON.parse(await Bun.file(path.join(storage, ".rivetkit/var/engine/runtime.json")).text()) as { pid: number };
      process.kill(runtime.pid, "SIGKILL");
    } catch (error) {
      log(`could not stop the floor engine: ${String(error)}`);
    }
    rmSync(storage, { recursive: true, force: true });
  }
}

/** sandbox-agent binary: spawn → /v1/health 200. */
async function daemonColdStart(runs = 10): Promise<Stats> {
  const require = createRequire(path.join(process.cwd(), "packages/backend/package.json"));
  const source = path.join(path.dirname(require.resolve("@sandbox-agent/cli-linux-x64/package.json")), "bin", "sandbox-agent");
  const dir = tempDir("bench-daemon");
  const binary = path.join(dir, "sandbox-agent-bin");
  copyFileSync(source, binary);
  chmodSync(binary, 0o755);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const child = spawn(binary, ["server", "--host", "127.0.0.1", "--port", String(port), "--token", "t", "--no-telemetry"], {
      env: { ...process.env, XDG_DATA_HOME: path.join(dir, "home") },
      stdio: "ignore",
    });
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v1/health`, { headers: { authorization: "Bearer t" } });
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    times.push(performance.now() - t0);
    child.kill("SIGKILL");
  }
  rmSync(dir, { recursive: true, force: true });
  return stats(times);
}

/** `git worktree add` from a bare clone: the local provider's irreducible git work. */
function worktreeFloor(runs = 20): Stats {
  const repo = makeGitRepo();
  const dir = tempDir("bench-worktree");
  const cache = path.join(dir, "cache.git");
  execFileSync("git", ["clone", "--bare", "--quiet", repo, cache]);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    execFileSync("git", ["worktree", "add", "--quiet", "-b", `b${i}`, path.join(dir, `wt${i}`), "main"], { cwd: cache });
    times.push(performance.now() - t0);
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(repo, { recursive: true, force: true });
  return stats(times);
}

// ---- Kiln ------------------------------------------------------------------------------------------

async function kilnFigures() {
  const backend = await startBackend({ env: { RIVET_LOG_LEVEL: "error" } });
  const client = createKilnClient({ endpoint: backend.url });
  const org = DEFAULT_ORG_ID;
  try {
    const repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
    // createTask load: a repo whose provider is not configured here, so each workflow runs ensure-name
    // and then fails fast at create-sandbox instead of holding 200 live sandboxes on a 2-core machine.
    const loadRepo = await client.addRepo(org, { remoteUrl: makeGitRepo(), defaultProvider: "daytona" });
    for (let i = 0; i < 5; i++) await client.createTask(org, { repoId: loadRepo.repoId, prompt: `warm-up ${i}` });
    log(`createTask × ${args.tasks}`);
    const createTimes: number[] = [];
    for (let i = 0; i < args.tasks; i++) {
      const t0 = performance.now();
      try {
        await client.createTask(org, { repoId: loadRepo.repoId, prompt: `load ${i}` });
        createTimes.push(performance.now() - t0);
      } catch (error) {
        failures.createTask.push(`${(performance.now() - t0).toFixed(0)} ms: ${String(error).slice(0, 120)}`);
      }
      if ((i + 1) % 50 === 0) log(`  ${i + 1} tasks, last ${ms(createTimes.at(-1)!)}`);
    }

    log(`click → first agent event × ${args.agentTasks} (local provider, scripted agent)`);
    const firstEvent: number[] = [];
    const pushLatency: number[] = [];
    for (let i = 0; i < args.agentTasks; i++) {
      const t0 = performance.now();
      const wallStart = Date.now();
      const task = await client.createTask(org, { repoId: repo.repoId, prompt: `bench ${i}` });
      const detail = await new Promise<TaskDetail>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`task ${task.taskId} produced no agent event in 60 s`)), 60_000);
        let seenTranscript = 0;
        const sub = client.subscribeTask(org, task.taskId, {
          onChange: (d) => {
            // Push latency: server timestamp of each newly arrived transcript event → arrival here.
            for (const e of d.transcript.slice(seenTranscript)) {
              if (e.createdAt >= wallStart) pushLatency.push(Date.now() - e.createdAt);
            }
            seenTranscript = d.transcript.length;
            if (d.transcript.some((e) => e.kind === "agent_message" || e.kind === "agent_thought")) {
              clearTimeout(timer);
              firstEvent.push(performance.now() - t0);
              sub.unsubscribe();
              resolve(d);
            }
            if (d.task.status === "error") {
              clearTimeout(timer);
              sub.unsubscribe();
              reject(new Error(`task failed: ${d.task.error}`));
            }
          },
          onError: reject,
        });
      });
      // Free the sandbox before the next one (keeps the machine's load steady across iterations).
      await waitIdle(client, org, detail.task.taskId);
      await client.archiveTask(org, { taskId: detail.task.taskId });
    }
    return { createTask: stats(createTimes), firstAgentEvent: stats(firstEvent), pushLatency: stats(pushLatency) };
  } finally {
    await client.dispose();
    await backend.destroy();
  }
}

async function waitIdle(client: ReturnType<typeof createKilnClient>, org: string, taskId: string) {
  for (let i = 0; i < 200; i++) {
    const d = await client.getTask(org, taskId);
    if (d.task.status === "idle" || d.task.status === "error") return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- Run -------------------------------------------------------------------------------------------

mkdirSync("test-artifacts", { recursive: true });
const memoryBefore = process.memoryUsage().rss;
log("floor: bare RivetKit actor");
const floor = await bareActorFloor();
log("floor: sandbox-agent cold start");
const daemon = await daemonColdStart();
log("floor: git worktree add");
const worktree = worktreeFloor();
const kiln = await kilnFigures();

const provisionFloor = floor.createAndAction.p50 + worktree.p50 + daemon.p50;
const rows: Array<[string, Stats, number | null, string]> = [
  ["bare actor create + 1 action (floor)", floor.createAndAction, null, ""],
  ["  the same, first 100 only (engine not yet sleeping actors)", floor.createAndActionFirst100, null, ""],
  ["bare actor broadcast round trip (floor)", floor.broadcast, null, ""],
  ["sandbox-agent cold start → healthy (floor)", daemon, null, ""],
  ["git worktree add (floor)", worktree, null, ""],
  [
    "createTask round trip",
    kiln.createTask,
    kiln.createTask.p95 / floor.createAndAction.p95,
    `p95 vs bare actor p95 at the same n; ${(kiln.createTask.p95 / floor.createAndActionFirst100.p95).toFixed(2)}× vs its first 100`,
  ],
  ["click → first agent event", kiln.firstAgentEvent, kiln.firstAgentEvent.p50 / provisionFloor, "p50 vs actor+worktree+daemon p50"],
  ["event push latency", kiln.pushLatency, kiln.pushLatency.p50 / floor.broadcast.p50, "p50 vs bare broadcast p50"],
];

const table = [
  "| figure | n | p50 | p95 | ratio to floor |",
  "|---|---|---|---|---|",
  ...rows.map(([name, s, ratio, note]) => `| ${name} | ${s.n} | ${ms(s.p50)} | ${ms(s.p95)} | ${ratio === null ? "—" : `${ratio.toFixed(2)}× (${note})`} |`),
].join("\n");
console.log(table);
for (const [name, list] of Object.entries(failures)) {
  if (list.length) console.log(`\n${list.length} failed ${name} call(s) (excluded from the figures):\n  ${list.join("\n  ")}`);
}
console.log(`\nbench process RSS: ${((process.memoryUsage().rss - memoryBefore) / 1e6).toFixed(0)} MB growth`);
if (args.json) console.log(JSON.stringify({ floor, daemon, worktree, kiln }));
process.exit(0);
