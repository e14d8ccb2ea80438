// In-memory KilnClient: the whole interface, with timers that walk provisioning and a scripted agent
// that understands the same prompt lines as the backend's offline agent (`write <path> <content>`,
// `ask-permission`, `fail`). Every subscription value is a whole snapshot produced by the shared reducers.
import {
  AddGitHubRepoInputSchema,
  AddRepoInputSchema,
  AnswerPermissionInputSchema,
  ArchiveTaskInputSchema,
  type ChangedFile,
  CreateSessionInputSchema,
  CreateTaskInputSchema,
  DestroyAllSandboxesInputSchema,
  type DestroyAllSandboxesResult,
  DestroySandboxInputSchema,
  type DestroySandboxResult,
  ExecInputSchema,
  type FileDiff,
  type GitHubEventBody,
  type GitHubRepoRecord,
  type GitHubSnapshot,
  OpenPullRequestInputSchema,
  type PullRequestInfo,
  PushBranchInputSchema,
  type SessionInfo,
  applyGitHubEvent,
  GetDiffInputSchema,
  KilnError,
  type OrganizationSnapshot,
  type OrgEventBody,
  OrgIdSchema,
  PROVISION_STEPS,
  type ProvisionStepName,
  type ProvisionStepRecord,
  ReadFileInputSchema,
  RenameSessionInputSchema,
  type RepoRecord,
  RunCodeInputSchema,
  type SandboxInfo,
  SendMessageInputSchema,
  type SessionRecord,
  SessionRefSchema,
  type TaskDetail,
  type TaskEventBody,
  type TaskRecord,
  TaskRefSchema,
  type TaskSummary,
  TERMINAL_TASK_STATUSES,
  type TranscriptEvent,
  WriteFileInputSchema,
  applyOrgEvent,
  applyTaskEvent,
  currentStepOf,
  deriveBranchName,
  deriveTaskStatus,
  deriveTitle,
  errorMessage,
  normalizeRemoteUrl,
  parseInput,
  repoNameFromUrl,
  sandboxNameForTask,
  slugify,
} from "@kiln/shared";
import type { ConnectionState, KilnClient, Subscription, SubscriptionCallbacks } from "./types.ts";

export interface MockKilnClientOptions {
  /** Delay between simulated steps (provisioning steps, agent output). Default 300 ms. */
  stepDelayMs?: number;
}

type Callbacks<T> = SubscriptionCallbacks<T>;
const toCallbacks = <T>(cb: Callbacks<T> | ((value: T) => void)): Callbacks<T> =>
  typeof cb === "function" ? { onChange: cb } : cb;

interface MockFile {
  base: string | null; // content at the base branch; null = did not exist
  current: string | null; // null = deleted
}

interface TaskState {
  detail: TaskDetail;
  files: Map<string, MockFile>;
  listeners: Set<Callbacks<TaskDetail>>;
  nextEventIndex: Map<string, number>;
  /** Bumped to cancel a session's running turn (stop, close, archive, new message). */
  turnToken: Map<string, number>;
  permissions: Map<string, { sessionId: string; resolve: (reply: "once" | "always" | "reject") => void }>;
  nextHistoryId: number;
  sessionCounter: number;
}

interface OrgState {
  snapshot: OrganizationSnapshot;
  tasks: Map<string, TaskState>;
  listeners: Set<Callbacks<OrganizationSnapshot>>;
}

const STEP_DETAIL: Record<ProvisionStepName, string> = {
  "ensure-name": "Choosing a branch name",
  "create-sandbox": "Allocating a sandbox and cloning the repository",
  "ensure-agent": "Installing the agent",
  "create-session": "Starting an agent session",
};

const fnv = (s: string) => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
};

const notFound = (what: string, id: string) => new KilnError("not_found", `${what} ${id} not found`);

function lines(text: string): string[] {
  const out = text.split("\n");
  if (out.at(-1) === "") out.pop();
  return out;
}

/** A whole-file unified diff (base → current), like `git diff` prints for a rewritten file. */
function unifiedDiff(path: string, file: MockFile): { diff: string; additions: number; deletions: number } {
  const before = file.base === null ? [] : lines(file.base);
  const after = file.current === null ? [] : lines(file.current);
  const head = [`diff --git a/${path} b/${path}`];
  if (file.base === null) head.push("new file mode 100644");
  if (file.current === null) head.push("deleted file mode 100644");
  head.push(file.base === null ? "--- /dev/null" : `--- a/${path}`);
  head.push(file.current === null ? "+++ /dev/null" : `+++ b/${path}`);
  const range = (n: number) => (n === 0 ? "0,0" : `1,${n}`);
  head.push(`@@ -${range(before.length)} +${range(after.length)} @@`);
  const body = [...before.map((l) => `-${l}`), ...after.map((l) => `+${l}`)];
  return { diff: `${[...head, ...body].join("\n")}\n`, additions: after.length, deletions: before.length };
}

/** The GitHub installation every mock org sees (single-user mode, App "configured"). */
const MOCK_GITHUB_REPOS: Array<Pick<GitHubRepoRecord, "owner" | "name" | "defaultBranch" | "private">> = [
  { owner: "acme", name: "widgets", defaultBranch: "main", private: true },
  { owner: "acme", name: "gadgets", defaultBranch: "trunk", private: false },
  { owner: "acme", name: "docs", defaultBranch: "main", private: false },
];

export function createMockKilnClient(options: MockKilnClientOptions = {}): KilnClient {
  const delay = options.stepDelayMs ?? 300;
  const githubs = new Map<string, { snapshot: GitHubSnapshot; listeners: Set<Callbacks<GitHubSnapshot>> }>();
  let nextPullNumber = 1;

  function github(orgId: string) {
    const id = parseInput(OrgIdSchema, orgId, "orgId");
    let state = githubs.get(id);
    if (!state) {
      const now = Date.now();
      state = {
        snapshot: {
          seq: 0,
          orgId: id,
          configured: true,
          installations: [
            { installationId: 1, accountLogin: "acme", accountType: "Organization", repositorySelection: "selected", suspended: false, updatedAt: now },
          ],
          repos: MOCK_GITHUB_REPOS.map((r, i) => ({
            githubId: 100 + i,
            installationId: 1,
            owner: r.owner,
            name: r.name,
            fullName: `${r.owner}/${r.name}`,
            defaultBranch: r.defaultBranch,
            private: r.private,
            archived: false,
            cloneUrl: `https://github.com/${r.owner}/${r.name}.git`,
            htmlUrl: `https://github.com/${r.owner}/${r.name}`,
            updatedAt: now,
          })),
          pullRequests: [],
          sync: { state: "idle", phase: null, done: 0, total: 0, startedAt: now, finishedAt: now, lastSyncedAt: now, error: null },
        },
        listeners: new Set(),
      };
      githubs.set(id, state);
    }
    return state;
  }

  function emitGitHub(orgId: string, body: GitHubEventBody) {
    const g = github(orgId);
    g.snapshot = applyGitHubEvent(g.snapshot, { ...body, seq: g.snapshot.seq + 1 });
    deliver(g.listeners, g.snapshot);
  }
  const orgs = new Map<string, OrgState>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let disposed = false;
  let taskCounter = 0;

  const sleep = (ms = delay) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  function org(orgId: string): OrgState {
    const id = parseInput(OrgIdSchema, orgId, "orgId");
    let state = orgs.get(id);
    if (!state) {
      state = { snapshot: { seq: 0, orgId: id, repos: [], tasks: [] }, tasks: new Map(), listeners: new Set() };
      orgs.set(id, state);
    }
    return state;
  }

  function taskState(orgId: string, taskId: string): TaskState {
    const t = org(orgId).tasks.get(taskId);
    if (!t) throw notFound("task", taskId);
    return t;
  }

  const deliver = <T>(listeners: Set<Callbacks<T>>, value: T) => {
    for (const l of listeners) l.onChange(value);
  };

  function summarize(d: TaskDetail): TaskSummary {
    const { orgId, taskId, repoId, repoName, title, branch, agent, provider, status, currentStep, error, pullRequest, createdAt, updatedAt } = d.task;
    return {
      orgId, taskId, repoId, repoName, title, branch, agent, provider, status, currentStep, error, pullRequest, createdAt, updatedAt,
      changedFiles: d.changes.length,
      sessionCount: d.sessions.length,
    };
  }

  function emitOrg(o: OrgState, body: OrgEventBody) {
    o.snapshot = applyOrgEvent(o.snapshot, { ...body, seq: o.snapshot.seq + 1 });
    deliver(o.listeners, o.snapshot);
  }

  /** Fold events into the task detail, then push the new snapshot to task and (if changed) org listeners. */
  function emit(t: TaskState, ...bodies: TaskEventBody[]) {
    // The task's status follows its sessions, folded into the same delivery so no snapshot is inconsistent.
    for (const body of [...bodies, ...syncStatus(t, bodies)]) t.detail = applyTaskEvent(t.detail, { ...body, seq: t.detail.seq + 1 });
    deliver(t.listeners, t.detail);
    const o = org(t.detail.task.orgId);
    const summary = summarize(t.detail);
    const previous = o.snapshot.tasks.find((s) => s.taskId === summary.taskId);
    if (JSON.stringify(previous) !== JSON.stringify(summary)) emitOrg(o, { type: "summary", summary });
  }

  const taskEvent = (t: TaskState, patch: Partial<TaskRecord>): TaskEventBody => ({
    type: "task",
    task: { ...t.detail.task, ...patch, updatedAt: Date.now() },
  });
  const history = (t: TaskState, kind: string, message: string, data: Record<string, unknown> | null = null): TaskEventBody => ({
    type: "history",
    event: { id: t.nextHistoryId++, kind, message, createdAt: Date.now(), data },
  });
  const stepEvent = (t: TaskState, name: ProvisionStepName, patch: Partial<ProvisionStepRecord>): TaskEventBody => {
    const step = t.detail.steps.find((s) => s.step === name);
    if (!step) throw new KilnError("internal", `step ${name} missing`);
    return { type: "step", step: { ...step, ...patch } };
  };
  const sessionEvent = (t: TaskState, sessionId: string, patch: Partial<SessionRecord>): TaskEventBody => {
    const session = t.detail.sessions.find((s) => s.sessionId === sessionId);
    if (!session) throw notFound("session", sessionId);
    return { type: "session", session: { ...session, ...patch, updatedAt: Date.now() } };
  };
  function transcript(t: TaskState, sessionId: string, kind: TranscriptEvent["kind"], text: string | null, data: Record<string, unknown> | null = null, eventIndex?: number): TaskEventBody {
    const index = eventIndex ?? t.nextEventIndex.get(sessionId) ?? 0;
    if (eventIndex === undefined) t.nextEventIndex.set(sessionId, index + 1);
    return { type: "transcript", event: { sessionId, eventIndex: index, kind, createdAt: Date.now(), text, data } };
  }

  /** Status, current step and error are derived from steps and sessions (shared rules), never set by hand. */
  function syncStatus(t: TaskState, pending: TaskEventBody[]): TaskEventBody[] {
    let detail = t.detail;
    for (const body of pending) detail = applyTaskEvent(detail, { ...body, seq: detail.seq + 1 });
    const { task, steps, sessions } = detail;
    const status = deriveTaskStatus(task.status, steps, sessions);
    const terminal = TERMINAL_TASK_STATUSES.includes(status);
    const currentStep = terminal ? null : currentStepOf(steps);
    const error =
      status !== "error"
        ? null
        : (steps.find((s) => s.state === "failed")?.error ?? sessions.find((s) => s.status === "error")?.error ?? task.error);
    if (status === task.status && currentStep === task.currentStep && error === task.error) return [];
    return [{ type: "task", task: { ...task, status, currentStep, error, updatedAt: Date.now() } }];
  }
  const isLive = (t: TaskState) => !disposed && !TERMINAL_TASK_STATUSES.includes(t.detail.task.status);

  function requireSandbox(t: TaskState): SandboxInfo {
    const sandbox = t.detail.sandbox;
    if (!isLive(t) || !sandbox || sandbox.state !== "running")
      throw new KilnError("not_ready", `task ${t.detail.task.taskId} has no running sandbox`);
    return sandbox;
  }

  function recomputeChanges(t: TaskState): TaskEventBody {
    const changes: ChangedFile[] = [];
    for (const [path, file] of [...t.files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (file.base === file.current) continue;
      const { additions, deletions } = unifiedDiff(path, file);
      const change = file.base === null ? "added" : file.current === null ? "deleted" : "modified";
      changes.push({ path, change, additions, deletions });
    }
    return { type: "changes", changes };
  }

  function writeSandboxFile(t: TaskState, path: string, content: string) {
    const clean = path.replace(/^\/+/, "").replace(/^\.\//, "");
    const file = t.files.get(clean) ?? { base: null, current: null };
    t.files.set(clean, { ...file, current: content });
    emit(t, recomputeChanges(t));
  }

  // ---- provisioning ----------------------------------------------------------------------------

  async function provision(t: TaskState, failCreateSandboxOnFirstAttempt: boolean) {
    for (const name of PROVISION_STEPS) {
      const step = t.detail.steps.find((s) => s.step === name);
      if (!step || step.state === "done") continue;
      const attempt = step.attempt + 1;
      emit(
        t,
        stepEvent(t, name, { state: "running", attempt, startedAt: Date.now(), finishedAt: null, error: null, detail: STEP_DETAIL[name] }),
      );
      await sleep();
      if (!isLive(t)) return;
      if (name === "create-sandbox" && failCreateSandboxOnFirstAttempt && attempt === 1) {
        const error = "sandbox provider refused the request (simulated by `fail-provision`)";
        emit(
          t,
          stepEvent(t, name, { state: "failed", finishedAt: Date.now(), error }),
          history(t, "step.failed", `${name} failed: ${error}`, { step: name, attempt }),
        );
        return;
      }
      const task = t.detail.task;
      let detail = "";
      const extra: TaskEventBody[] = [];
      if (name === "ensure-name") detail = `branch ${task.branch}`;
      if (name === "create-sandbox") {
        const sandbox: SandboxInfo = {
          provider: task.provider,
          sandboxId: `${task.provider}-${fnv(task.taskId)}`,
          name: sandboxNameForTask(task.taskId),
          workdir: "/home/sandbox/repo",
          state: "running",
        };
        extra.push({ type: "sandbox", sandbox });
        detail = `${sandbox.name} (${task.provider})`;
      }
      if (name === "ensure-agent") detail = `${task.agent} agent ready`;
      if (name === "create-session") {
        const session = newSession(t, task.agent, "Session 1", "ready");
        extra.push({ type: "session", session });
        detail = session.title;
      }
      emit(
        t,
        stepEvent(t, name, { state: "done", finishedAt: Date.now(), detail }),
        ...extra,
        history(t, "step.done", `${name}: ${detail}`, { step: name, attempt }),
      );
    }
    const first = t.detail.sessions[0];
    if (first) startTurn(t, first.sessionId, t.detail.task.prompt);
  }

  /** Runs provisioning; an unexpected throw becomes the task's error (never lost). */
  async function runProvision(t: TaskState, failCreateSandboxOnFirstAttempt: boolean) {
    try {
      await provision(t, failCreateSandboxOnFirstAttempt);
    } catch (error) {
      const step = t.detail.steps.find((s) => s.state === "running") ?? t.detail.steps.find((s) => s.state !== "done");
      if (!step) throw error;
      emit(t, stepEvent(t, step.step, { state: "failed", finishedAt: Date.now(), error: errorMessage(error) }));
    }
  }

  function newSession(t: TaskState, agent: SessionRecord["agent"], title: string, status: SessionRecord["status"]): SessionRecord {
    t.sessionCounter += 1;
    const now = Date.now();
    return { sessionId: `s${t.sessionCounter}`, title, agent, status, error: null, createdAt: now, updatedAt: now };
  }

  // ---- the scripted agent -------------------------------------------------------------------------

  function startTurn(t: TaskState, sessionId: string, text: string) {
    const token = (t.turnToken.get(sessionId) ?? 0) + 1;
    t.turnToken.set(sessionId, token);
    emit(t, transcript(t, sessionId, "user_message", text), sessionEvent(t, sessionId, { status: "running", error: null }));
    runTurn(t, sessionId, text, token).then(
      () => undefined,
      (error: unknown) => {
        const message = errorMessage(error);
        const alive = t.detail.sessions.some((s) => s.sessionId === sessionId);
        emit(t, transcript(t, sessionId, "error", message), ...(alive ? [sessionEvent(t, sessionId, { status: "error", error: message })] : []));
      },
    );
  }

  async function runTurn(t: TaskState, sessionId: string, text: string, token: number) {
    const current = () => isLive(t) && t.turnToken.get(sessionId) === token;
    const instructions = text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^write\s+\S+/.test(l) || l === "ask-permission" || l === "fail");
    let planIndex: number | undefined; // one plan event per turn, updated in place
    const plan = (done: number) => {
      planIndex ??= t.nextEventIndex.get(sessionId) ?? 0;
      if (planIndex === t.nextEventIndex.get(sessionId)) t.nextEventIndex.set(sessionId, planIndex + 1);
      return transcript(t, sessionId, "plan", null, {
        entries: instructions.map((content, i) => ({ content, priority: "medium", status: i < done ? "completed" : i === done ? "in_progress" : "pending" })),
      }, planIndex);
    };
    await sleep();
    if (!current()) return;
    emit(t, transcript(t, sessionId, "agent_thought", `Reading the instructions in: ${text}`));
    if (instructions.length) emit(t, plan(0));
    const written: string[] = [];
    let toolCounter = 0;
    for (const [i, line] of instructions.entries()) {
      await sleep();
      if (!current()) return;
      const toolCallId = `${sessionId}-tool-${t.nextEventIndex.get(sessionId) ?? 0}-${toolCounter++}`;
      const write = /^write\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (write) {
        const path = write[1] ?? "";
        emit(t, transcript(t, sessionId, "tool_call", `Write ${path}`, { toolCallId, title: `Write ${path}`, kind: "edit", status: "in_progress" }));
        writeSandboxFile(t, path, `${(write[2] ?? "").replace(/\\n/g, "\n")}\n`);
        written.push(path);
        emit(t, transcript(t, sessionId, "tool_call_update", null, { toolCallId, status: "completed" }));
      } else if (line === "ask-permission") {
        const title = "Run a scripted command";
        const permissionId = `perm-${sessionId}-${t.nextEventIndex.get(sessionId) ?? 0}`;
        emit(t, transcript(t, sessionId, "tool_call", title, { toolCallId, title, kind: "execute", status: "pending" }));
        const reply = await new Promise<"once" | "always" | "reject">((resolve) => {
          t.permissions.set(permissionId, { sessionId, resolve });
          emit(
            t,
            transcript(t, sessionId, "permission_request", title, {
              permissionId,
              toolCallId,
              title,
              options: [
                { optionId: "allow-once", name: "Allow", kind: "allow_once" },
                { optionId: "reject-once", name: "Reject", kind: "reject_once" },
              ],
            }),
            sessionEvent(t, sessionId, { status: "needs_input" }),
          );
        });
        if (!current()) return;
        const allowed = reply !== "reject";
        emit(
          t,
          transcript(t, sessionId, "permission_reply", allowed ? "Allowed" : "Rejected", { permissionId, reply }),
          transcript(t, sessionId, "tool_call_update", null, { toolCallId, status: allowed ? "completed" : "failed" }),
          transcript(t, sessionId, "agent_message", allowed ? "Permission granted\n" : "Permission denied\n"),
          sessionEvent(t, sessionId, { status: "running" }),
        );
      } else {
        throw new KilnError("internal", "scripted failure requested");
      }
      emit(t, plan(i + 1));
    }
    // Stream the reply: the same transcript event grows chunk by chunk.
    const reply = `You said: ${text}\n\n${written.length ? `Wrote ${written.map((p) => `\`${p}\``).join(", ")}.` : "No files written."}`;
    const index = t.nextEventIndex.get(sessionId) ?? 0;
    t.nextEventIndex.set(sessionId, index + 1);
    const size = Math.ceil(reply.length / 3);
    for (let end = size; ; end += size) {
      await sleep(delay / 3);
      if (!current()) return;
      emit(t, transcript(t, sessionId, "agent_message", reply.slice(0, end), null, index));
      if (end >= reply.length) break;
    }
    emit(t, transcript(t, sessionId, "turn_end", null, { stopReason: "end_turn" }), sessionEvent(t, sessionId, { status: "ready" }));
  }

  function cancelTurn(t: TaskState, sessionId: string) {
    t.turnToken.set(sessionId, (t.turnToken.get(sessionId) ?? 0) + 1);
    for (const [id, p] of t.permissions) if (p.sessionId === sessionId) t.permissions.delete(id);
  }

  function liveSession(t: TaskState, sessionId: string): SessionRecord {
    if (!isLive(t)) throw new KilnError("not_ready", `task ${t.detail.task.taskId} is ${t.detail.task.status}`);
    const session = t.detail.sessions.find((s) => s.sessionId === sessionId);
    if (!session) throw notFound("session", sessionId);
    return session;
  }

  /** `target` resolves (or throws a KilnError) on the next microtask, like a remote subscription would. */
  function subscribe<T>(cb: Callbacks<T>, target: () => { listeners: Set<Callbacks<T>>; value: T }): Subscription {
    let active = true;
    let listeners: Set<Callbacks<T>> | null = null;
    const report = (state: ConnectionState) => cb.onConnectionChange?.(state);
    report("connecting");
    queueMicrotask(() => {
      if (!active) return;
      try {
        const { listeners: set, value: initial } = target();
        listeners = set;
        set.add(cb);
        report("connected");
        cb.onChange(initial);
      } catch (error) {
        report("closed");
        const err = error instanceof Error ? error : new KilnError("internal", errorMessage(error));
        if (cb.onError) cb.onError(err);
        else console.error("kiln mock subscription failed:", err);
      }
    });
    return {
      unsubscribe() {
        active = false;
        listeners?.delete(cb);
      },
    };
  }

  function assertOpen() {
    if (disposed) throw new KilnError("unavailable", "client was disposed");
  }

  // ---- the KilnClient ----------------------------------------------------------------------------

  const client: KilnClient = {
    async addRepo(orgId, input) {
      assertOpen();
      const o = org(orgId);
      const parsed = parseInput(AddRepoInputSchema, input, "repo");
      const normalized = normalizeRemoteUrl(parsed.remoteUrl);
      const name = parsed.name ?? repoNameFromUrl(parsed.remoteUrl);
      const repoId = `${slugify(name, 40)}-${fnv(normalized)}`;
      const existing = o.snapshot.repos.find((r) => r.repoId === repoId);
      if (existing) return existing;
      const repo: RepoRecord = {
        repoId,
        name,
        remoteUrl: parsed.remoteUrl,
        defaultBranch: parsed.defaultBranch ?? "main",
        defaultProvider: parsed.defaultProvider ?? "local",
        defaultAgent: parsed.defaultAgent ?? "mock",
        createdAt: Date.now(),
      };
      emitOrg(o, { type: "repo", repo });
      return repo;
    },
    async listRepos(orgId) {
      return org(orgId).snapshot.repos;
    },
    async createTask(orgId, input) {
      assertOpen();
      const o = org(orgId);
      const parsed = parseInput(CreateTaskInputSchema, input, "task");
      const repo = o.snapshot.repos.find((r) => r.repoId === parsed.repoId);
      if (!repo) throw notFound("repo", parsed.repoId);
      const title = parsed.title ?? deriveTitle(parsed.prompt);
      const siblings = [...o.tasks.values()].filter((x) => x.detail.task.repoId === repo.repoId && !TERMINAL_TASK_STATUSES.includes(x.detail.task.status));
      const taken = (b: string) => siblings.some((x) => x.detail.task.branch === b);
      if (parsed.branch && taken(parsed.branch)) throw new KilnError("conflict", `branch ${parsed.branch} is already used by another task`);
      const branch = parsed.branch ?? deriveBranchName(title, taken);
      taskCounter += 1;
      const now = Date.now();
      const task: TaskRecord = {
        orgId: o.snapshot.orgId,
        taskId: `t${taskCounter}-${fnv(`${now}-${taskCounter}-${Math.random()}`)}`,
        repoId: repo.repoId,
        repoName: repo.name,
        title,
        prompt: parsed.prompt,
        baseBranch: parsed.baseBranch ?? repo.defaultBranch,
        branch,
        agent: parsed.agent ?? repo.defaultAgent,
        provider: parsed.provider ?? repo.defaultProvider,
        status: "queued",
        currentStep: null,
        error: null,
        pullRequest: null,
        createdAt: now,
        updatedAt: now,
      };
      const steps = PROVISION_STEPS.map((step) => ({ step, state: "pending" as const, attempt: 0, startedAt: null, finishedAt: null, error: null, detail: null }));
      const t: TaskState = {
        detail: { seq: 0, task, steps, sandbox: null, sessions: [], transcript: [], history: [], changes: [] },
        files: new Map([["README.md", { base: `# ${repo.name}\n`, current: `# ${repo.name}\n` }]]),
        listeners: new Set(),
        nextEventIndex: new Map(),
        turnToken: new Map(),
        permissions: new Map(),
        nextHistoryId: 1,
        sessionCounter: 0,
      };
      o.tasks.set(task.taskId, t);
      emit(t, history(t, "task.created", `Task created on ${branch} from ${task.baseBranch}`, { branch }));
      const failOnce = /^fail-provision$/m.test(parsed.prompt);
      void sleep(0).then(() => (isLive(t) ? runProvision(t, failOnce) : undefined));
      return task;
    },
    async listTasks(orgId) {
      return org(orgId).snapshot.tasks;
    },
    async getOrganization(orgId) {
      return org(orgId).snapshot;
    },
    async getTask(orgId, taskId) {
      return taskState(orgId, parseInput(TaskRefSchema, { taskId }).taskId).detail;
    },
    // The mock's detail holds the whole transcript: there is never an older page.
    async getTranscriptPage(orgId, input) {
      taskState(orgId, input.taskId);
      return { sessionId: input.sessionId, events: [], before: null };
    },
    async sendMessage(orgId, input) {
      assertOpen();
      const parsed = parseInput(SendMessageInputSchema, input, "message");
      const t = taskState(orgId, parsed.taskId);
      const session = liveSession(t, parsed.sessionId);
      if (session.status !== "ready") throw new KilnError("not_ready", `session ${session.title} is ${session.status}`);
      emit(t, history(t, "message.sent", `Message sent to ${session.title}`, { sessionId: session.sessionId }));
      startTurn(t, session.sessionId, parsed.text);
    },
    async answerPermission(orgId, input) {
      assertOpen();
      const parsed = parseInput(AnswerPermissionInputSchema, input, "permission answer");
      const t = taskState(orgId, parsed.taskId);
      liveSession(t, parsed.sessionId);
      const pending = t.permissions.get(parsed.permissionId);
      if (!pending || pending.sessionId !== parsed.sessionId) throw notFound("permission request", parsed.permissionId);
      t.permissions.delete(parsed.permissionId);
      emit(t, history(t, "permission.answered", `Permission ${parsed.reply === "reject" ? "rejected" : "granted"}`, { ...parsed }));
      pending.resolve(parsed.reply);
    },
    async createSession(orgId, input) {
      assertOpen();
      const parsed = parseInput(CreateSessionInputSchema, input, "session");
      const t = taskState(orgId, parsed.taskId);
      requireSandbox(t);
      if (!t.detail.steps.every((s) => s.state === "done")) throw new KilnError("not_ready", "task is still provisioning");
      const session = newSession(t, parsed.agent ?? t.detail.task.agent, parsed.title ?? `Session ${t.sessionCounter + 1}`, "creating");
      emit(t, { type: "session", session }, history(t, "session.created", `${session.title} created`, { sessionId: session.sessionId }));
      void sleep().then(() => {
        const s = t.detail.sessions.find((x) => x.sessionId === session.sessionId);
        if (isLive(t) && s?.status === "creating") emit(t, sessionEvent(t, s.sessionId, { status: "ready" }));
      });
      return session;
    },
    async stopSession(orgId, input) {
      assertOpen();
      const parsed = parseInput(SessionRefSchema, input, "session");
      const t = taskState(orgId, parsed.taskId);
      const session = liveSession(t, parsed.sessionId);
      cancelTurn(t, session.sessionId);
      emit(t, sessionEvent(t, session.sessionId, { status: "stopped" }), history(t, "session.stopped", `${session.title} stopped`));
    },
    async closeSession(orgId, input) {
      assertOpen();
      const parsed = parseInput(SessionRefSchema, input, "session");
      const t = taskState(orgId, parsed.taskId);
      const session = liveSession(t, parsed.sessionId);
      if (t.detail.sessions.length <= 1) throw new KilnError("conflict", "a task keeps at least one open session");
      cancelTurn(t, session.sessionId);
      // The shared events have no "session removed"; the mock folds the removal into a whole snapshot.
      t.detail = { ...t.detail, seq: t.detail.seq + 1, sessions: t.detail.sessions.filter((s) => s.sessionId !== session.sessionId) };
      emit(t, history(t, "session.closed", `${session.title} closed`));
    },
    async renameSession(orgId, input) {
      assertOpen();
      const parsed = parseInput(RenameSessionInputSchema, input, "session");
      const t = taskState(orgId, parsed.taskId);
      const session = liveSession(t, parsed.sessionId);
      emit(t, sessionEvent(t, session.sessionId, { title: parsed.title }), history(t, "session.renamed", `${session.title} renamed to ${parsed.title}`));
    },
    async retryTask(orgId, taskId) {
      assertOpen();
      const t = taskState(orgId, parseInput(TaskRefSchema, { taskId }).taskId);
      if (t.detail.task.status !== "error") throw new KilnError("conflict", `task is ${t.detail.task.status}, only a task in error can be retried`);
      if (t.detail.steps.some((s) => s.state === "failed")) {
        emit(t, history(t, "task.retried", `Retrying from ${t.detail.task.currentStep ?? "the start"}`));
        void runProvision(t, false);
        return;
      }
      // Provisioned but a session failed: the agent restarts those sessions.
      const failed = t.detail.sessions.filter((s) => s.status === "error");
      emit(
        t,
        ...failed.map((s) => sessionEvent(t, s.sessionId, { status: "ready", error: null })),
        history(t, "task.retried", `Restarted ${failed.map((s) => s.title).join(", ")}`),
      );
    },
    async archiveTask(orgId, input) {
      assertOpen();
      const parsed = parseInput(ArchiveTaskInputSchema, input, "archive");
      const t = taskState(orgId, parsed.taskId);
      if (TERMINAL_TASK_STATUSES.includes(t.detail.task.status)) throw new KilnError("conflict", `task is already ${t.detail.task.status}`);
      for (const s of t.detail.sessions) cancelTurn(t, s.sessionId);
      const sandbox = t.detail.sandbox;
      emit(
        t,
        ...t.detail.sessions.filter((s) => s.status !== "stopped").map((s) => sessionEvent(t, s.sessionId, { status: "stopped" })),
        ...(sandbox ? [{ type: "sandbox" as const, sandbox: { ...sandbox, state: parsed.keepSandbox ? ("kept" as const) : ("destroyed" as const) } }] : []),
        taskEvent(t, { status: "archived" }),
        history(t, "task.archived", parsed.keepSandbox ? "Archived; sandbox kept" : "Archived; sandbox released"),
      );
    },
    async killTask(orgId, taskId) {
      assertOpen();
      const t = taskState(orgId, parseInput(TaskRefSchema, { taskId }).taskId);
      if (TERMINAL_TASK_STATUSES.includes(t.detail.task.status)) throw new KilnError("conflict", `task is already ${t.detail.task.status}`);
      for (const s of t.detail.sessions) cancelTurn(t, s.sessionId);
      const sandbox = t.detail.sandbox;
      emit(
        t,
        ...t.detail.sessions.filter((s) => s.status !== "stopped").map((s) => sessionEvent(t, s.sessionId, { status: "stopped" })),
        ...(sandbox ? [{ type: "sandbox" as const, sandbox: { ...sandbox, state: "destroyed" as const } }] : []),
        taskEvent(t, { status: "killed" }),
        history(t, "task.killed", "Killed; sandbox destroyed"),
      );
    },
    async getDiff(orgId, taskId) {
      const parsed = parseInput(GetDiffInputSchema, { taskId });
      return taskState(orgId, parsed.taskId).detail.changes;
    },
    async getFileDiff(orgId, taskId, path): Promise<FileDiff> {
      const parsed = parseInput(GetDiffInputSchema, { taskId, path });
      const t = taskState(orgId, parsed.taskId);
      const file = t.files.get(path);
      if (!file || file.base === file.current) throw notFound("changed file", path);
      return { path, diff: unifiedDiff(path, file).diff };
    },
    async exec(orgId, input) {
      const parsed = parseInput(ExecInputSchema, input, "exec");
      const t = taskState(orgId, parsed.taskId);
      requireSandbox(t);
      const cat = /^cat\s+(\S+)$/.exec(parsed.command.trim());
      if (cat) {
        const file = t.files.get(cat[1] ?? "");
        if (!file || file.current === null) return { exitCode: 1, stdout: "", stderr: `cat: ${cat[1]}: No such file or directory\n`, durationMs: 1 };
        return { exitCode: 0, stdout: file.current, stderr: "", durationMs: 1 };
      }
      if (parsed.command.trim() === "ls") {
        const names = [...t.files].filter(([, f]) => f.current !== null).map(([p]) => p).sort();
        return { exitCode: 0, stdout: names.map((n) => `${n}\n`).join(""), stderr: "", durationMs: 1 };
      }
      const echo = /^echo\s+(.*)$/.exec(parsed.command.trim());
      if (echo) return { exitCode: 0, stdout: `${echo[1]}\n`, stderr: "", durationMs: 1 };
      return { exitCode: 127, stdout: "", stderr: `mock sandbox: command not supported: ${parsed.command}\n`, durationMs: 1 };
    },
    async runCode(orgId, input) {
      const parsed = parseInput(RunCodeInputSchema, input, "code");
      requireSandbox(taskState(orgId, parsed.taskId));
      return { exitCode: 0, stdout: `mock ${parsed.language}: ${parsed.code.length} characters run\n`, stderr: "", durationMs: 1 };
    },
    async readFile(orgId, input) {
      const parsed = parseInput(ReadFileInputSchema, input, "path");
      const t = taskState(orgId, parsed.taskId);
      requireSandbox(t);
      const file = t.files.get(parsed.path.replace(/^\/+/, ""));
      if (!file || file.current === null) throw notFound("file", parsed.path);
      return file.current;
    },
    async readFileRange(orgId, input) {
      const content = await this.readFile(orgId, input);
      const offset = Math.min(input.offset ?? 0, content.length);
      const slice = content.slice(offset, offset + (input.length ?? content.length));
      return { content: slice, offset, totalChars: content.length, truncated: offset + slice.length < content.length };
    },
    async writeFile(orgId, input) {
      const parsed = parseInput(WriteFileInputSchema, input, "file");
      const t = taskState(orgId, parsed.taskId);
      requireSandbox(t);
      writeSandboxFile(t, parsed.path, parsed.content);
    },
    async listSandboxes(orgId) {
      const out: Array<SandboxInfo & { taskId: string }> = [];
      for (const [taskId, t] of org(orgId).tasks) if (t.detail.sandbox) out.push({ ...t.detail.sandbox, taskId });
      return out;
    },
    async destroySandbox(orgId, taskId): Promise<DestroySandboxResult> {
      assertOpen();
      const parsed = parseInput(DestroySandboxInputSchema, { taskId }, "sandbox");
      const t = taskState(orgId, parsed.taskId);
      const sandbox = t.detail.sandbox;
      const had = !!sandbox && sandbox.state !== "destroyed";
      const result = { taskId: parsed.taskId, name: sandbox?.name ?? null, destroyed: had, killedTask: false };
      // Same rules as the backend: a live task ends with its sandbox; a kept one is deleted on its own.
      if (isLive(t)) {
        await client.killTask(orgId, parsed.taskId);
        return { ...result, killedTask: true };
      }
      if (!sandbox || !had) return result;
      emit(
        t,
        { type: "sandbox", sandbox: { ...sandbox, state: "destroyed" } },
        history(t, "sandbox.destroyed", `Destroyed the kept sandbox ${sandbox.name}`, { name: sandbox.name }),
      );
      return result;
    },
    async destroyAllSandboxes(orgId, input = {}): Promise<DestroyAllSandboxesResult> {
      assertOpen();
      const parsed = parseInput(DestroyAllSandboxesInputSchema, input, "destroy all");
      const out: DestroyAllSandboxesResult = { results: [], failed: [] };
      for (const [taskId, t] of org(orgId).tasks) {
        const state = t.detail.sandbox?.state;
        if (!state || state === "destroyed" || (parsed.keptOnly && state !== "kept")) continue;
        try {
          out.results.push(await client.destroySandbox(orgId, taskId));
        } catch (error) {
          out.failed.push({ taskId, error: errorMessage(error) });
        }
      }
      return out;
    },
    subscribeOrganization(orgId, callbacks) {
      return subscribe(toCallbacks(callbacks), () => {
        assertOpen();
        const o = org(orgId);
        return { listeners: o.listeners, value: o.snapshot };
      });
    },
    subscribeTask(orgId, taskId, callbacks) {
      return subscribe(toCallbacks(callbacks), () => {
        assertOpen();
        const t = taskState(orgId, taskId);
        return { listeners: t.listeners, value: t.detail };
      });
    },
    async getSession(): Promise<SessionInfo> {
      assertOpen();
      return {
        authEnabled: false,
        githubConfigured: true,
        user: null,
        orgs: ["default"],
        signInUrl: null,
        installUrl: null,
        expiresAt: null,
      };
    },
    async signOut() {
      assertOpen();
    },
    async listGitHubRepos(orgId) {
      assertOpen();
      const registered = org(orgId).snapshot.repos;
      return github(orgId).snapshot.repos.map((r) => ({
        ...r,
        repoId: registered.find((x) => normalizeRemoteUrl(x.remoteUrl) === normalizeRemoteUrl(r.cloneUrl ?? ""))?.repoId ?? null,
      }));
    },
    async addGitHubRepo(orgId, input) {
      assertOpen();
      const parsed = parseInput(AddGitHubRepoInputSchema, input, "GitHub repository");
      const repo = github(orgId).snapshot.repos.find((r) => r.fullName.toLowerCase() === parsed.fullName.toLowerCase());
      if (!repo?.cloneUrl) throw new KilnError("not_found", `${parsed.fullName} is not visible to this organization's GitHub App installation`);
      return client.addRepo(orgId, {
        remoteUrl: repo.cloneUrl,
        name: repo.name,
        ...(repo.defaultBranch ? { defaultBranch: repo.defaultBranch } : {}),
        ...(parsed.defaultProvider ? { defaultProvider: parsed.defaultProvider } : {}),
        ...(parsed.defaultAgent ? { defaultAgent: parsed.defaultAgent } : {}),
      });
    },
    async syncGitHub(orgId) {
      assertOpen();
      const g = github(orgId);
      const startedAt = Date.now();
      const total = g.snapshot.repos.length;
      emitGitHub(orgId, { type: "sync", sync: { ...g.snapshot.sync, state: "syncing", phase: "repositories", done: 0, total, startedAt, finishedAt: null, error: null } });
      for (let done = 1; done <= total; done++) {
        await sleep(Math.min(delay, 100));
        emitGitHub(orgId, { type: "sync", sync: { ...github(orgId).snapshot.sync, done } });
      }
      const finishedAt = Date.now();
      emitGitHub(orgId, { type: "sync", sync: { ...github(orgId).snapshot.sync, state: "idle", phase: null, finishedAt, lastSyncedAt: finishedAt } });
      return github(orgId).snapshot.sync;
    },
    async getGitHub(orgId) {
      assertOpen();
      return github(orgId).snapshot;
    },
    subscribeGitHub(orgId, callbacks) {
      return subscribe(toCallbacks(callbacks), () => {
        assertOpen();
        const g = github(orgId);
        return { listeners: g.listeners, value: g.snapshot };
      });
    },
    async pushBranch(orgId, input) {
      assertOpen();
      const parsed = parseInput(PushBranchInputSchema, input, "push");
      const t = taskState(orgId, parsed.taskId);
      requireSandbox(t);
      const branch = t.detail.task.branch;
      if (!branch) throw new KilnError("not_ready", "the task has no branch yet");
      const committed = t.detail.changes.length > 0;
      const sha = fnv(`${branch}:${Date.now()}`).padEnd(40, "0").slice(0, 40);
      emit(t, history(t, "branch.pushed", `Pushed ${branch} (${sha.slice(0, 7)})`, { branch, sha, committed }));
      return { branch, sha, committed };
    },
    async openPullRequest(orgId, input) {
      assertOpen();
      const parsed = parseInput(OpenPullRequestInputSchema, input, "pull request");
      const t = taskState(orgId, parsed.taskId);
      await client.pushBranch(orgId, { taskId: parsed.taskId });
      const existing = t.detail.task.pullRequest;
      if (existing && (existing.state === "open" || existing.state === "draft")) {
        emit(t, history(t, "pr.reused", `PR #${existing.number} is already open for ${t.detail.task.branch}`, { number: existing.number }));
        return existing;
      }
      const number = nextPullNumber++;
      const repo = org(orgId).snapshot.repos.find((r) => r.repoId === t.detail.task.repoId);
      const base = (repo?.remoteUrl ?? "https://github.com/acme/repo").replace(/\.git$/, "");
      const pullRequest: PullRequestInfo = {
        number,
        url: `${base}/pull/${number}`,
        state: parsed.draft ? "draft" : "open",
        checks: "pending",
        review: "none",
      };
      emit(t, taskEvent(t, { pullRequest }), history(t, "pr.opened", `Opened PR #${number}`, { number, url: pullRequest.url }));
      // The mock's CI finishes a moment later.
      void sleep().then(() => {
        const current = t.detail.task.pullRequest;
        if (current?.number === number) emit(t, taskEvent(t, { pullRequest: { ...current, checks: "success" } }));
      });
      return pullRequest;
    },
    async dispose() {
      disposed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const g of githubs.values()) {
        for (const l of g.listeners) l.onConnectionChange?.("closed");
        g.listeners.clear();
      }
      for (const o of orgs.values()) {
        for (const l of o.listeners) l.onConnectionChange?.("closed");
        o.listeners.clear();
        for (const t of o.tasks.values()) {
          for (const l of t.listeners) l.onConnectionChange?.("closed");
          t.listeners.clear();
        }
      }
    },
  };
  return client;
}

