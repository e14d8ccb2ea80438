// Live test of a running Kiln backend, through the typed client only: register a repo, create a task,
// follow its provisioning steps in realtime, wait for the agent's reply, have it write a file and check
// the diff, archive, and check the sandbox was released. Prints how long each part took.
//
//   bun scripts/live-test-flow.ts [--endpoint URL] [--json] [--provider local|daytona]
//     [--agent mock|claude|codex|opencode|amp] [--repo <url-or-path>] [--timeout-ms N]
//
// Exit code 0 when every check passed; 1 on a failed check or the overall deadline; 2 on bad flags.
// With --json the last line of stdout is one JSON object ({"ok":true,…} or {"ok":false,"error":…});
// progress goes to stderr.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { type KilnClient, type Subscription, createKilnClient } from "../packages/client/src/index.ts";
import type { ProvisionStepName, TaskDetail, TranscriptEvent } from "../packages/shared/src/index.ts";

const ORG = "default";
const STEPS = ["ensure-name", "create-sandbox", "ensure-agent", "create-session"] as const satisfies readonly ProvisionStepName[];
const FILE = "kiln-live-test.txt";
const FILE_CONTENT = "hello from kiln";
/** Transcript kinds that come from the agent (not from Kiln or the user). */
const AGENT_KINDS = new Set<TranscriptEvent["kind"]>([
  "agent_message",
  "agent_thought",
  "tool_call",
  "tool_call_update",
  "plan",
  "permission_request",
  "error",
]);

const USAGE = `usage: bun scripts/live-test-flow.ts [--endpoint URL] [--json] [--provider local|daytona]
       [--agent mock|claude|codex|opencode|amp] [--repo <url-or-path>] [--timeout-ms N]

  --endpoint    Kiln backend URL (default http://127.0.0.1:7741)
  --json        last line of stdout is a JSON result; progress and the table go to stderr
  --provider    sandbox provider for the task (default local)
  --agent       agent for the task (default mock, the offline scripted agent)
  --repo        repository to use (https/ssh/file:// URL or absolute path); default: a fixture
                git repo created in a temp dir (the backend must run on this machine then)
  --timeout-ms  overall deadline (default 180000)`;

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false; // not a URL at all: the schema reports it
  }
}

const FlagsSchema = z.object({
  endpoint: z
    .string()
    .refine(isHttpUrl, "--endpoint must be an http(s) URL such as http://127.0.0.1:7741")
    .default("http://127.0.0.1:7741"),
  json: z.boolean().default(false),
  provider: z.enum(["local", "daytona"], { error: "--provider must be local or daytona" }).default("local"),
  agent: z
    .enum(["mock", "claude", "codex", "opencode", "amp"], { error: "--agent must be one of mock, claude, codex, opencode, amp" })
    .default("mock"),
  repo: z.string().trim().min(1, "--repo must not be empty").optional(),
  timeoutMs: z.coerce
    .number({ error: "--timeout-ms must be a number" })
    .int("--timeout-ms must be a whole number of milliseconds")
    .min(1000, "--timeout-ms must be at least 1000")
    .max(3_600_000, "--timeout-ms must be at most 3600000 (one hour)")
    .default(180_000),
  help: z.boolean().default(false),
});
type Flags = z.infer<typeof FlagsSchema>;

class UsageError extends Error {}

function parseFlags(argv: string[]): Flags {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        endpoint: { type: "string" },
        json: { type: "boolean" },
        provider: { type: "string" },
        agent: { type: "string" },
        repo: { type: "string" },
        "timeout-ms": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { "timeout-ms": timeoutMs, ...rest } = values;
  const result = FlagsSchema.safeParse({ ...rest, timeoutMs });
  if (!result.success) throw new UsageError(result.error.issues.map((i) => i.message).join("; "));
  return result.data;
}

// ---- output -------------------------------------------------------------------------------------

const progress = (line: string) => process.stderr.write(`[live-test] ${line}\n`);

interface Timings {
  createTaskMs: number;
  steps: Record<ProvisionStepName, number>;
  firstAgentEventMs: number;
  replyMs: number;
  writeMs: number;
  archiveMs: number;
  totalMs: number;
}

function table(t: Timings): string {
  const rows: Array<[string, number]> = [
    ["createTask (call)", t.createTaskMs],
    ...STEPS.map((s): [string, number] => [`  step ${s}`, t.steps[s]]),
    ["first agent event (after createTask)", t.firstAgentEventMs],
    ["reply complete (after createTask)", t.replyMs],
    [`write ${FILE} + diff`, t.writeMs],
    ["archive + cleanup check", t.archiveMs],
    ["total", t.totalMs],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, ms]) => `${label.padEnd(width)}  ${String(Math.round(ms)).padStart(7)} ms`).join("\n");
}

// ---- fixture ------------------------------------------------------------------------------------

function makeFixtureRepo(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-live-repo-"));
  const env = { ...process.env, GIT_AUTHOR_NAME: "kiln", GIT_AUTHOR_EMAIL: "kiln@localhost", GIT_COMMITTER_NAME: "kiln", GIT_COMMITTER_EMAIL: "kiln@localhost" };
  const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  git("init", "-q", "-b", "main");
  writeFileSync(path.join(dir, "README.md"), "# Kiln live test fixture\n");
  git("add", ".");
  git("commit", "-qm", "initial commit");
  return dir;
}

// ---- realtime task watcher ----------------------------------------------------------------------

interface Waiter {
  what: string;
  done: (d: TaskDetail) => boolean;
  resolve: (d: TaskDetail) => void;
  reject: (e: Error) => void;
}

/** One subscription to the task: keeps the latest detail, logs step changes, resolves waiters. */
class TaskWatcher {
  latest: TaskDetail | null = null;
  firstAgentEventAt: number | null = null;
  private readonly waiters = new Set<Waiter>();
  private readonly stepStates = new Map<string, string>();
  private readonly sub: Subscription;
  private failure: Error | null = null;

  constructor(
    client: KilnClient,
    taskId: string,
    private readonly onPermission: ((d: TaskDetail, e: TranscriptEvent) => void) | null,
  ) {
    this.sub = client.subscribeTask(ORG, taskId, {
      onChange: (d) => this.onChange(d),
      onConnectionChange: (state) => {
        if (state === "reconnecting" || state === "closed") progress(`task subscription ${state}`);
      },
      onError: (error) => this.fail(new Error(`task subscription failed: ${error.message}`)),
    });
  }

  private onChange(d: TaskDetail) {
    this.latest = d;
    for (const s of d.steps) {
      const key = `${s.state}#${s.attempt}`;
      if (this.stepStates.get(s.step) === key) continue;
      this.stepStates.set(s.step, key);
      if (s.state === "running") progress(`step ${s.step} running${s.attempt > 1 ? ` (attempt ${s.attempt})` : ""}`);
      if (s.state === "done") progress(`step ${s.step} done in ${s.finishedAt! - s.startedAt!} ms`);
      if (s.state === "failed") progress(`step ${s.step} FAILED: ${s.error ?? "(no message)"}`);
    }
    if (this.firstAgentEventAt === null && d.transcript.some((e) => AGENT_KINDS.has(e.kind))) {
      this.firstAgentEventAt = Date.now();
    }
    if (this.onPermission && d.task.status === "needs_input") {
      const open = openPermission(d);
      if (open) this.onPermission(d, open);
    }
    for (const w of this.waiters) {
      let done: boolean;
      try {
        done = w.done(d);
      } catch (error) {
        this.waiters.delete(w);
        w.reject(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      if (done) {
        this.waiters.delete(w);
        w.resolve(d);
      }
    }
  }

  private fail(error: Error) {
    this.failure = error;
    for (const w of this.waiters) w.reject(error);
    this.waiters.clear();
  }

  /** Resolves with the first detail (current or future) for which `done` holds. */
  async until(what: string, done: (d: TaskDetail) => boolean): Promise<TaskDetail> {
    if (this.failure) throw this.failure;
    if (this.latest && done(this.latest)) return this.latest;
    return new Promise((resolve, reject) => this.waiters.add({ what, done, resolve, reject }));
  }

  close() {
    this.sub.unsubscribe();
  }
}

function openPermission(d: TaskDetail): TranscriptEvent | null {
  const answered = new Set(d.transcript.filter((e) => e.kind === "permission_reply").map((e) => String(e.data?.permissionId)));
  return d.transcript.findLast((e) => e.kind === "permission_request" && !answered.has(String(e.data?.permissionId))) ?? null;
}

/** A task error ends the run at once, with the failed step's or the task's own message. */
function failIfError(d: TaskDetail): void {
  if (d.task.status !== "error" && d.task.status !== "killed" && d.task.status !== "archived") return;
  const step = d.steps.find((s) => s.state === "failed");
  const why = step ? `step ${step.step} failed: ${step.error ?? "(no message)"}` : (d.task.error ?? "(no message)");
  throw new Error(`task ${d.task.taskId} is ${d.task.status}: ${why}`);
}

const agentText = (d: TaskDetail, sessionId: string, after = -1) =>
  d.transcript
    .filter((e) => e.sessionId === sessionId && e.kind === "agent_message" && e.eventIndex > after)
    .map((e) => e.text ?? "")
    .join("");

const lastIndex = (d: TaskDetail, sessionId: string) =>
  Math.max(-1, ...d.transcript.filter((e) => e.sessionId === sessionId).map((e) => e.eventIndex));

/** The session's latest turn is over and the task is waiting for the user. */
const settledAfter = (sessionId: string, after: number) => (d: TaskDetail) =>
  d.task.status === "idle" && d.transcript.some((e) => e.sessionId === sessionId && e.kind === "turn_end" && e.eventIndex > after);

// ---- the flow -----------------------------------------------------------------------------------

interface RunState {
  phase: string;
  client: KilnClient | null;
  taskId: string | null;
  archived: boolean;
  watcher: TaskWatcher | null;
}

async function run(flags: Flags, state: RunState, fixtureDir: string | null): Promise<Timings> {
  const mock = flags.agent === "mock";
  const client = createKilnClient({ endpoint: flags.endpoint, callTimeoutMs: Math.min(60_000, flags.timeoutMs) });
  state.client = client;
  const started = performance.now();

  state.phase = "registering the repository";
  const remoteUrl = flags.repo ?? fixtureDir!;
  const repo = await client.addRepo(ORG, { remoteUrl });
  progress(`repo ${repo.name} (${repo.repoId}) from ${repo.remoteUrl}, default branch ${repo.defaultBranch}`);

  state.phase = "creating the task";
  const prompt = mock
    ? "Kiln live test: please reply to this message"
    : "Kiln live test: reply with one short sentence saying hello. Do not change any files.";
  const createStart = performance.now();
  const record = await client.createTask(ORG, { repoId: repo.repoId, prompt, agent: flags.agent, provider: flags.provider });
  const createdAt = performance.now();
  const createdAtWall = Date.now();
  state.taskId = record.taskId;
  progress(`task ${record.taskId} created in ${Math.round(createdAt - createStart)} ms (status ${record.status})`);

  // Real agents may ask before running tools: allow once, so the run is unattended.
  const answered = new Set<string>();
  const watcher = new TaskWatcher(
    client,
    record.taskId,
    mock
      ? null
      : (d, request) => {
          const permissionId = String(request.data?.permissionId);
          if (answered.has(permissionId)) return;
          answered.add(permissionId);
          progress(`allowing permission request: ${request.text ?? permissionId}`);
          client
            .answerPermission(ORG, { taskId: d.task.taskId, sessionId: request.sessionId, permissionId, reply: "once" })
            .then(
              () => undefined,
              (error: unknown) => progress(`answering permission ${permissionId} failed: ${String(error)}`),
            );
        },
  );
  state.watcher = watcher;
  const guard = (done: (d: TaskDetail) => boolean) => (d: TaskDetail) => {
    if (done(d)) return true;
    failIfError(d);
    return false;
  };
  const wait = (what: string, done: (d: TaskDetail) => boolean) => {
    state.phase = what;
    return watcher.until(what, guard(done));
  };

  const provisioned = await wait("provisioning", (d) => d.steps.length === STEPS.length && d.steps.every((s) => s.state === "done"));
  const steps = Object.fromEntries(
    STEPS.map((name) => {
      const s = provisioned.steps.find((x) => x.step === name)!;
      return [name, s.finishedAt! - s.startedAt!];
    }),
  ) as Record<ProvisionStepName, number>;
  const sessionId = provisioned.sessions[0]?.sessionId;
  if (!sessionId) throw new Error("provisioning finished but the task has no session");

  const replied = await wait("waiting for the agent's reply", settledAfter(sessionId, -1));
  const replyMs = performance.now() - createdAt;
  const reply = agentText(replied, sessionId);
  if (mock && !reply.includes(prompt)) throw new Error(`the reply does not contain the prompt: ${JSON.stringify(reply.slice(0, 300))}`);
  if (!mock && reply.trim() === "") throw new Error("the agent's turn ended without any message");
  progress(`reply: ${JSON.stringify(reply.trim().slice(0, 120))}`);
  if (watcher.firstAgentEventAt === null) throw new Error("the agent replied but no agent event was seen");
  const firstAgentEventMs = watcher.firstAgentEventAt - createdAtWall;

  state.phase = `asking the agent to write ${FILE}`;
  const writeStart = performance.now();
  const before = lastIndex(replied, sessionId);
  const instruction = mock
    ? `write ${FILE} ${FILE_CONTENT}`
    : `Create a file named ${FILE} in the repository root containing exactly one line: ${FILE_CONTENT}`;
  await client.sendMessage(ORG, { taskId: record.taskId, sessionId, text: instruction });
  const written = await wait(`waiting for ${FILE} in the changed files`, (d) =>
    settledAfter(sessionId, before)(d) && d.changes.some((c) => c.path === FILE),
  ).catch((error: unknown) => {
    const last = watcher.latest;
    const changes = last ? last.changes.map((c) => c.path).join(", ") || "(none)" : "(unknown)";
    throw new Error(`${error instanceof Error ? error.message : String(error)} (changed files: ${changes})`);
  });
  const change = written.changes.find((c) => c.path === FILE)!;
  progress(`${FILE}: ${change.change} +${change.additions} -${change.deletions}`);
  if (mock) {
    state.phase = `reading the diff of ${FILE}`;
    const diff = await client.getFileDiff(ORG, record.taskId, FILE);
    if (!diff.diff.includes(`+${FILE_CONTENT}`)) throw new Error(`the diff of ${FILE} lacks "+${FILE_CONTENT}":\n${diff.diff}`);
  }
  const writeMs = performance.now() - writeStart;

  state.phase = "archiving";
  const archiveStart = performance.now();
  watcher.close();
  state.watcher = null;
  await client.archiveTask(ORG, { taskId: record.taskId });
  state.archived = true;
  state.phase = "checking cleanup";
  const archived = await client.getTask(ORG, record.taskId);
  if (archived.task.status !== "archived") throw new Error(`after archive the task is ${archived.task.status}, not archived`);
  if (archived.sandbox?.state !== "destroyed") {
    throw new Error(`after archive the sandbox is ${archived.sandbox ? archived.sandbox.state : "missing"}, not destroyed`);
  }
  const archiveMs = performance.now() - archiveStart;
  progress(`archived; sandbox ${archived.sandbox.name} destroyed`);

  return {
    createTaskMs: createdAt - createStart,
    steps,
    firstAgentEventMs,
    replyMs,
    writeMs,
    archiveMs,
    totalMs: performance.now() - started,
  };
}

/** After a failure: archive the task so no sandbox is left behind. Its own errors are reported. */
async function cleanUp(state: RunState): Promise<void> {
  state.watcher?.close();
  if (!state.client || !state.taskId || state.archived) return;
  progress(`archiving task ${state.taskId} after the failure`);
  try {
    await state.client.archiveTask(ORG, { taskId: state.taskId });
  } catch (error) {
    progress(`could not archive task ${state.taskId}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function main(): Promise<number> {
  let flags: Flags;
  const wantsJson = process.argv.includes("--json");
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`error: ${error.message}\n\n${USAGE}\n`);
    if (wantsJson) process.stdout.write(`${JSON.stringify({ ok: false, error: `bad flags: ${error.message}` })}\n`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  // RivetKit's client logs every typed error response on stdout; this script reports them itself.
  process.env.RIVET_LOG_LEVEL ??= "error";
  progress(`endpoint ${flags.endpoint} · agent ${flags.agent} · provider ${flags.provider} · deadline ${flags.timeoutMs} ms`);
  const state: RunState = { phase: "starting", client: null, taskId: null, archived: false, watcher: null };
  const fixtureDir = flags.repo ? null : makeFixtureRepo();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${flags.timeoutMs} ms while ${state.phase}`)), flags.timeoutMs);
  });
  let exitCode = 0;
  try {
    const timings = await Promise.race([run(flags, state, fixtureDir), deadline]);
    const out = flags.json ? process.stderr : process.stdout;
    out.write(`\nKiln live test passed (${flags.endpoint}, agent ${flags.agent}, provider ${flags.provider})\n${table(timings)}\n`);
    if (flags.json) {
      const result = {
        ok: true,
        createTaskMs: Math.round(timings.createTaskMs),
        steps: Object.fromEntries(STEPS.map((s) => [s, timings.steps[s]])),
        firstAgentEventMs: timings.firstAgentEventMs,
        totalMs: Math.round(timings.totalMs),
      };
      process.stdout.write(`${JSON.stringify(result)}\n`);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`\nKiln live test FAILED: ${message}\n`);
    if (flags.json) process.stdout.write(`${JSON.stringify({ ok: false, error: message })}\n`);
    exitCode = 1;
    await cleanUp(state);
  } finally {
    clearTimeout(timer);
    if (state.client) {
      const disposing = state.client.dispose();
      const closed = disposing.then(
        () => true,
        (error: unknown) => {
          progress(`closing the client failed: ${error instanceof Error ? error.message : String(error)}`);
          return true;
        },
      );
      const disposed = await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!disposed) progress("client did not close within 5 s");
    }
    if (fixtureDir) rmSync(fixtureDir, { recursive: true, force: true });
  }
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`Kiln live test crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify({ ok: false, error: String(error) })}\n`);
    process.exit(1);
  },
);
