// Daytona sandboxes for Kiln tasks, on the real @daytonaio/sdk.
//
// One sandbox per task, named `task-<id>` and labelled app=kiln/org/task, so every step is
// create-or-get and a replayed workflow step never makes a second sandbox.
//
// Auto-stop policy (Daytona's idle timer ignores processes inside the sandbox, so a long agent turn
// would look "idle"): while a task is live the sandbox runs with autoStopInterval=0 (never stops on
// its own; idle between turns counts as live). `release(name)` — called when the task is archived
// with its sandbox kept — re-enables auto-stop after DAYTONA_AUTO_STOP_MINUTES, and `reapOrphans`
// (the maintenance actor's cron) deletes sandboxes whose task is gone. We chose this over
// refreshActivity() heartbeats: a missed heartbeat (sleeping actor, backend restart) would silently
// stop a sandbox mid-task; a missed release only costs money until the reaper runs. Any use of a
// stopped sandbox (exec, files, daemon) starts it again. See research/decisions/0006-daytona-lifecycle.md.
import { randomBytes, randomUUID } from "node:crypto";
import path from "node:path";
import type { Image, Sandbox } from "@daytonaio/sdk";
import { Daytona, SandboxState } from "@daytonaio/sdk";
import { BranchNameSchema, type ExecResult, KilnError, errorMessage, parseInput } from "@kiln/shared";
import { kilnImage } from "../../../../../daytona/image.ts";
import { gitAuthEnv, redactSecrets } from "../../integrations/github/git.ts";
import type { ActionsCallbackWaiter } from "../../integrations/github-actions/callbacks.ts";
import type { ActionsDispatcher } from "../../integrations/github-actions/dispatch.ts";
import type {
  AgentEndpoint,
  EnsureDaemonOptions,
  SandboxHandle,
  SandboxProvider,
  SandboxSpec,
  StepContext,
} from "../types.ts";
import type { DaytonaProviderConfig } from "./config.ts";
import { daytonaCall, isNotFound, toKilnError } from "./errors.ts";
import { shQuote, wrapScript } from "./shell.ts";
import { abortError, sleep } from "../../util/process.ts";

export const KILN_APP_LABEL = { app: "kiln" } as const;
export const DAEMON_SESSION = "kiln-daemon";
export const DEFAULT_DAEMON_PORT = 2468;
export const PREVIEW_TOKEN_HEADER = "x-daytona-preview-token";

export interface GitCredentials {
  username: string;
  /** Short-lived token (e.g. a GitHub App installation token). */
  password: string;
}

export interface DaytonaProviderOptions extends DaytonaProviderConfig {
  /** Fresh credentials for the clone; null/undefined clones anonymously. */
  gitCredentials?: (remoteUrl: string) => Promise<GitCredentials | null>;
  /** GitHub Actions create path (createMode actions/hybrid). Injected so tests use loopback fakes. */
  actionsDispatcher?: ActionsDispatcher;
  actionsWaiter?: ActionsCallbackWaiter;
  actionsCallbackUrl?: string;
  actionsTimeoutMs?: number;
  daemonPort?: number;
  /** Seconds for create/start from a snapshot. */
  createTimeoutSec?: number;
  /** Seconds for a declarative-image create (includes the image build). */
  declarativeBuildTimeoutSec?: number;
  daemonHealthTimeoutMs?: number;
  /** Client-side deadline for every Daytona HTTP call. */
  requestTimeoutMs?: number;
  /** Poll instead of socket.io for state changes (tests: the loopback fake has no socket.io). */
  useDeprecatedPolling?: boolean;
  /** The declarative image (default: daytona/image.ts). */
  image?: () => Image;
  /** Operational log lines (never contain secrets). */
  log?: (line: string) => void;
}

const RUNNING_STATES = new Set<string>([SandboxState.STARTED]);
const STARTABLE_STATES = new Set<string>([SandboxState.STOPPED, SandboxState.ARCHIVED, SandboxState.PAUSED]);
const TRANSIENT_UP_STATES = new Set<string>([
  SandboxState.CREATING,
  SandboxState.STARTING,
  SandboxState.RESTORING,
  SandboxState.PENDING_BUILD,
  SandboxState.BUILDING_SNAPSHOT,
  SandboxState.PULLING_SNAPSHOT,
  SandboxState.RESUMING,
  SandboxState.RESIZING,
]);
const GONE_STATES = new Set<string>([SandboxState.DESTROYED, SandboxState.DESTROYING]);

export class DaytonaProvider implements SandboxProvider {
  readonly id = "daytona" as const;
  readonly client: Daytona;
  private readonly homes = new Map<string, string>();
  private readonly port: number;
  private readonly log: (line: string) => void;

  constructor(private readonly options: DaytonaProviderOptions) {
    this.client = new Daytona({
      apiKey: options.apiKey,
      apiUrl: options.apiUrl,
      ...(options.target ? { target: options.target } : {}),
      requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
      ...(options.useDeprecatedPolling ? { useDeprecatedPolling: true } : {}),
    });
    this.port = options.daemonPort ?? DEFAULT_DAEMON_PORT;
    this.log = options.log ?? ((line) => console.warn(`[daytona] ${line}`));
  }

  /** Close the SDK's event connection. */
  async close(): Promise<void> {
    await this.client[Symbol.asyncDispose]();
  }

  // ---------------------------------------------------------------- lookup

  private async findByName(name: string): Promise<Sandbox | null> {
    try {
      const sandbox = await this.client.get(name);
      if (sandbox.state === SandboxState.DESTROYED) return null;
      return sandbox;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toKilnError(`get sandbox ${name}`, error);
    }
  }

  private assertOurs(sandbox: Sandbox, name: string): void {
    if (sandbox.labels?.app !== KILN_APP_LABEL.app) {
      throw new KilnError("conflict", `Daytona sandbox ${name} exists but is not labelled app=kiln; refusing to use it`);
    }
  }

  private toHandle(sandbox: Sandbox, workdir: string): SandboxHandle {
    return {
      provider: "daytona",
      sandboxId: sandbox.id,
      name: sandbox.name,
      workdir,
      state: RUNNING_STATES.has(sandbox.state ?? "") ? "running" : "stopped",
      labels: { ...(sandbox.labels ?? {}) },
    };
  }

  private async home(sandbox: Sandbox): Promise<string> {
    const cached = this.homes.get(sandbox.id);
    if (cached) return cached;
    const dir = await daytonaCall("read home directory", () => sandbox.getUserHomeDir());
    if (!dir || !path.posix.isAbsolute(dir)) throw new KilnError("unavailable", `Daytona returned no home directory for ${sandbox.name}`);
    this.homes.set(sandbox.id, dir);
    return dir;
  }

  private async workdirOf(sandbox: Sandbox): Promise<string> {
    return path.posix.join(await this.home(sandbox), "repo");
  }

  /** Workdir without touching the toolbox (stopped sandbox): cached, else Daytona's default home. */
  private knownWorkdir(sandbox: Sandbox): string {
    return path.posix.join(this.homes.get(sandbox.id) ?? "/home/daytona", "repo");
  }

  async get(name: string): Promise<SandboxHandle | null> {
    const sandbox = await this.findByName(name);
    if (!sandbox || GONE_STATES.has(sandbox.state ?? "")) return null;
    const workdir = RUNNING_STATES.has(sandbox.state ?? "") ? await this.workdirOf(sandbox) : this.knownWorkdir(sandbox);
    return this.toHandle(sandbox, workdir);
  }

  private async listSandboxes(labels: Record<string, string>): Promise<Sandbox[]> {
    return daytonaCall("list sandboxes", async () => {
      const out: Sandbox[] = [];
      for await (const sandbox of this.client.list({ labels: { ...labels, ...KILN_APP_LABEL } })) out.push(sandbox);
      return out;
    });
  }

  async listByLabels(labels: Record<string, string>): Promise<SandboxHandle[]> {
    const sandboxes = await this.listSandboxes(labels);
    return sandboxes
      .filter((s) => !GONE_STATES.has(s.state ?? ""))
      .map((s) => this.toHandle(s, this.knownWorkdir(s)));
  }

  // ---------------------------------------------------------------- lifecycle

  /** Bring a found sandbox to `started`: start it if stopped (never recreate), wait if in transit. */
  private async ensureStarted(sandbox: Sandbox, ctx?: StepContext): Promise<Sandbox> {
    const timeout = this.options.createTimeoutSec ?? 180;
    const state = sandbox.state ?? "unknown";
    if (RUNNING_STATES.has(state)) return sandbox;
    if (STARTABLE_STATES.has(state)) {
      ctx?.progress(`starting ${state} sandbox ${sandbox.name}`);
      await this.abortable(daytonaCall(`start sandbox ${sandbox.name}`, () => sandbox.start(timeout)), ctx?.signal);
      return sandbox;
    }
    if (TRANSIENT_UP_STATES.has(state)) {
      ctx?.progress(`waiting for sandbox ${sandbox.name} (${state})`);
      await this.abortable(daytonaCall(`wait for sandbox ${sandbox.name}`, () => sandbox.waitUntilStarted(timeout)), ctx?.signal);
      return sandbox;
    }
    if (state === SandboxState.STOPPING || state === SandboxState.ARCHIVING || state === SandboxState.PAUSING) {
      ctx?.progress(`waiting for sandbox ${sandbox.name} to finish ${state}, then starting it`);
      await this.abortable(
        daytonaCall(`start sandbox ${sandbox.name}`, async () => {
          await sandbox.waitUntilStopped(timeout);
          await sandbox.start(timeout);
        }),
        ctx?.signal,
      );
      return sandbox;
    }
    if ((state === SandboxState.ERROR || state === SandboxState.BUILD_FAILED) && sandbox.recoverable) {
      ctx?.progress(`recovering sandbox ${sandbox.name} from ${state}`);
      await this.abortable(daytonaCall(`recover sandbox ${sandbox.name}`, () => sandbox.recover(timeout)), ctx?.signal);
      return sandbox;
    }
    throw new KilnError(
      "unavailable",
      `Daytona sandbox ${sandbox.name} is in state ${state}${sandbox.errorReason ? ` (${sandbox.errorReason})` : ""}; destroy the task's sandbox to recreate it`,
    );
  }

  /** A started sandbox for `handle`, starting it if Daytona stopped it meanwhile. */
  private async use(handle: SandboxHandle, ctx?: StepContext): Promise<Sandbox> {
    const sandbox = await daytonaCall(`get sandbox ${handle.name}`, () => this.client.get(handle.sandboxId));
    if (GONE_STATES.has(sandbox.state ?? "")) throw new KilnError("not_found", `Daytona sandbox ${handle.name} was deleted`);
    return this.ensureStarted(sandbox, ctx);
  }

  /**
   * Race SDK work against the step's signal. The SDK takes no AbortSignal, so the request itself
   * keeps running; a replayed step finds its result by name. Its late failure is logged, not lost.
   */
  private abortable<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!signal) return work;
    if (signal.aborted) {
      work.then(undefined, (error: unknown) => this.log(`abandoned operation failed: ${errorMessage(error)}`));
      return Promise.reject(abortError(signal));
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        work.then(undefined, (error: unknown) => this.log(`abandoned operation failed: ${errorMessage(error)}`));
        reject(abortError(signal));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      work.then(
        (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
  }

  async createOrGet(spec: SandboxSpec, ctx: StepContext): Promise<SandboxHandle> {
    if (ctx.signal.aborted) throw abortError(ctx.signal);
    let sandbox = await this.findByName(spec.name);
    if (sandbox && sandbox.state === SandboxState.DESTROYING) {
      sandbox = await this.waitGone(sandbox, ctx);
    }
    if (sandbox) {
      this.assertOurs(sandbox, spec.name);
      ctx.progress(`found sandbox ${sandbox.name} (${sandbox.state})`);
      sandbox = await this.ensureStarted(sandbox, ctx);
    } else {
      sandbox = await this.create(spec, ctx);
    }
    await this.keepLive(sandbox);
    const workdir = await this.workdirOf(sandbox);
    await this.ensureCheckout(sandbox, workdir, spec, ctx);
    return this.toHandle(sandbox, workdir);
  }

  private async waitGone(sandbox: Sandbox, ctx: StepContext): Promise<Sandbox | null> {
    ctx.progress(`sandbox ${sandbox.name} is being deleted; waiting before recreating it`);
    const deadline = Date.now() + (this.options.createTimeoutSec ?? 180) * 1000;
    while (Date.now() < deadline) {
      await sleep(500, ctx.signal);
      const current = await this.findByName(sandbox.name);
      if (!current || current.state === SandboxState.DESTROYED) return null;
      if (current.state !== SandboxState.DESTROYING) return current;
    }
    throw new KilnError("timeout", `Daytona sandbox ${sandbox.name} stayed in destroying`);
  }

  /** Labels Kiln puts on every sandbox (app=kiln always wins). */
  private labelsFor(spec: SandboxSpec): Record<string, string> {
    return { ...spec.labels, ...KILN_APP_LABEL };
  }

  private async create(spec: SandboxSpec, ctx: StepContext): Promise<Sandbox> {
    const mode = this.options.createMode;
    if (mode === "actions") return this.createViaActions(spec, ctx);
    if (mode === "api") return this.createDirect(spec, ctx);
    try {
      return await this.createDirect(spec, ctx);
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      ctx.progress(`direct Daytona create failed (${errorMessage(error)}); falling back to GitHub Actions`);
      this.log(`hybrid create of ${spec.name}: direct API failed, using GitHub Actions: ${errorMessage(error)}`);
      // The direct attempt may have created it after all (client-side timeout); reuse it if so.
      const existing = await this.findByName(spec.name);
      if (existing && !GONE_STATES.has(existing.state ?? "")) {
        this.assertOurs(existing, spec.name);
        return this.ensureStarted(existing, ctx);
      }
      return this.createViaActions(spec, ctx);
    }
  }

  private async createDirect(spec: SandboxSpec, ctx: StepContext): Promise<Sandbox> {
    const base = {
      name: spec.name,
      envVars: spec.env,
      labels: this.labelsFor(spec),
      // 0 = never auto-stop while the task is live (see the policy at the top of this file).
      autoStopInterval: 0,
    };
    let work: Promise<Sandbox>;
    if (this.options.useDeclarativeImage) {
      ctx.progress(`creating sandbox ${spec.name} from the declarative image (builds on first use)`);
      const image = (this.options.image ?? kilnImage)();
      work = this.client.create(
        { ...base, image },
        {
          timeout: this.options.declarativeBuildTimeoutSec ?? 1800,
          onSnapshotCreateLogs: (line: string) => ctx.progress(line),
        },
      );
    } else {
      ctx.progress(`creating sandbox ${spec.name} from snapshot ${this.options.snapshotName}`);
      work = this.client.create({ ...base, snapshot: this.options.snapshotName }, { timeout: this.options.createTimeoutSec ?? 180 });
    }
    try {
      const sandbox = await this.abortable(work, ctx.signal);
      ctx.progress(`sandbox ${sandbox.name} started (${sandbox.id})`);
      return sandbox;
    } catch (error) {
      // Lost a race with a concurrent replay of this step: use the winner's sandbox.
      if (toKilnError("create", error).code === "conflict") {
        const existing = await this.findByName(spec.name);
        if (existing) {
          this.assertOurs(existing, spec.name);
          return this.ensureStarted(existing, ctx);
        }
      }
      throw toKilnError(`create sandbox ${spec.name}`, error);
    }
  }

  private async createViaActions(spec: SandboxSpec, ctx: StepContext): Promise<Sandbox> {
    const { actionsDispatcher: dispatcher, actionsWaiter: waiter } = this.options;
    const callbackUrl = this.options.actionsCallbackUrl ?? this.options.actions?.callbackUrl;
    if (!dispatcher || !waiter || !callbackUrl) {
      throw new KilnError("unavailable", "GitHub Actions sandbox creation is not configured (dispatcher, waiter, callback URL)");
    }
    const requestId = randomUUID();
    const timeoutMs = this.options.actionsTimeoutMs ?? this.options.actions?.timeoutMs ?? 240_000;
    // Register before dispatching: the callback may arrive before the dispatch call returns.
    const callback = waiter.wait(requestId, timeoutMs, ctx.signal);
    ctx.progress(`dispatching GitHub Actions workflow to create ${spec.name} (request ${requestId})`);
    try {
      await dispatcher.dispatch({
        requestId,
        sandboxName: spec.name,
        snapshot: this.options.snapshotName,
        callbackUrl,
        labels: this.labelsFor(spec),
        autoStopMinutes: 0,
        ...(this.options.target ? { target: this.options.target } : {}),
      });
    } catch (error) {
      // Settle the registered wait with the dispatch error; awaiting it rethrows that error.
      waiter.cancel(requestId, error instanceof Error ? error : new Error(errorMessage(error)));
      return await callback.then(() => {
        throw error;
      });
    }
    ctx.progress("waiting for the workflow to report back");
    const payload = await callback;
    if (payload.status !== "created" || !payload.sandboxId) {
      throw new KilnError("unavailable", `GitHub Actions could not create sandbox ${spec.name}: ${payload.error ?? "no sandbox id reported"}`);
    }
    const sandbox = await daytonaCall(`get sandbox ${payload.sandboxId}`, () => this.client.get(payload.sandboxId));
    if (sandbox.name !== spec.name) {
      throw new KilnError("conflict", `workflow reported sandbox ${sandbox.name}, expected ${spec.name}`);
    }
    this.assertOurs(sandbox, spec.name);
    ctx.progress(`sandbox ${sandbox.name} created by GitHub Actions (${sandbox.id})`);
    return this.ensureStarted(sandbox, ctx);
  }

  /** Live task: make sure Daytona will not auto-stop it (a kept sandbox may have been released). */
  private async keepLive(sandbox: Sandbox): Promise<void> {
    if (sandbox.autoStopInterval === 0) return;
    await daytonaCall(`disable auto-stop of ${sandbox.name}`, () => sandbox.setAutostopInterval(0));
  }

  /** The task is no longer live but its sandbox is kept: let Daytona stop it when idle. */
  async release(name: string): Promise<void> {
    const sandbox = await this.findByName(name);
    if (!sandbox || GONE_STATES.has(sandbox.state ?? "")) return;
    await daytonaCall(`enable auto-stop of ${name}`, () => sandbox.setAutostopInterval(this.options.autoStopMinutes));
  }

  async stop(name: string): Promise<void> {
    const sandbox = await this.findByName(name);
    if (!sandbox || sandbox.state === SandboxState.STOPPED || GONE_STATES.has(sandbox.state ?? "")) return;
    await daytonaCall(`stop sandbox ${name}`, () => sandbox.stop(this.options.createTimeoutSec ?? 180));
  }

  async destroy(name: string): Promise<void> {
    const sandbox = await this.findByName(name);
    if (!sandbox || GONE_STATES.has(sandbox.state ?? "")) return;
    await this.deleteSandbox(sandbox);
  }

  private async deleteSandbox(sandbox: Sandbox): Promise<void> {
    try {
      await sandbox.delete(this.options.createTimeoutSec ?? 180);
    } catch (error) {
      if (isNotFound(error)) return; // deleted concurrently: the goal is reached
      throw toKilnError(`delete sandbox ${sandbox.name}`, error);
    } finally {
      this.homes.delete(sandbox.id);
    }
  }

  /**
   * Delete every app=kiln sandbox (matching `labels`, e.g. `{ org }`) whose `task` label is not a
   * live task. Sandboxes without a task label are left alone (not ours to judge). Returns the names
   * deleted.
   */
  async reapOrphans(listLiveTaskIds: () => Promise<Iterable<string>>, labels: Record<string, string> = {}): Promise<string[]> {
    const sandboxes = await this.listSandboxes(labels);
    // Read live tasks after listing: a task created in between is then still seen as live.
    const live = new Set(await listLiveTaskIds());
    const deleted: string[] = [];
    for (const sandbox of sandboxes) {
      const task = sandbox.labels?.task;
      if (!task || live.has(task) || GONE_STATES.has(sandbox.state ?? "")) continue;
      this.log(`reaping orphan sandbox ${sandbox.name} (task ${task} is not live)`);
      await this.deleteSandbox(sandbox);
      deleted.push(sandbox.name);
    }
    return deleted;
  }

  // ---------------------------------------------------------------- repository

  private async ensureCheckout(sandbox: Sandbox, workdir: string, spec: SandboxSpec, ctx: StepContext): Promise<void> {
    const probe = await this.run(sandbox, `test -d ${shQuote(path.posix.join(workdir, ".git"))}`, { timeoutSec: 30 });
    if (probe.exitCode === 0) {
      ctx.progress("repository already checked out");
      return;
    }
    const { remoteUrl, baseBranch, branch } = spec.repo;
    ctx.progress(`cloning ${remoteUrl} at ${branch}`);
    // The task's own token (GitHub App installation / user token) wins over the provider-wide hook.
    const creds: GitCredentials | null = spec.repo.accessToken
      ? { username: "x-access-token", password: await spec.repo.accessToken() }
      : this.options.gitCredentials
        ? await this.options.gitCredentials(remoteUrl)
        : null;
    const q = shQuote;
    // Clone into a private temp dir and rename: a concurrent or interrupted attempt never leaves a
    // half-cloned workdir behind, and the loser of a race just discards its copy.
    const tmp = `${workdir}.partial-${randomBytes(4).toString("hex")}`;
    const script = [
      `tmp=${q(tmp)}`,
      `mkdir -p ${q(path.posix.dirname(workdir))}`,
      `authgit clone --quiet --no-checkout -- ${q(remoteUrl)} "$tmp"`,
      `rm -f "$auth"`,
      `cd "$tmp"`,
      `if git show-ref --verify --quiet ${q(`refs/remotes/origin/${branch}`)}; then`,
      `  git checkout --quiet -B ${q(branch)} ${q(`origin/${branch}`)}`,
      `elif git show-ref --verify --quiet ${q(`refs/remotes/origin/${baseBranch}`)}; then`,
      `  git checkout --quiet -b ${q(branch)} ${q(`origin/${baseBranch}`)}`,
      "else",
      `  echo "base branch ${baseBranch.replace(/[^\w./-]/g, "")} not found on the remote" >&2; exit 3`,
      "fi",
      "cd /",
      `if [ -e ${q(path.posix.join(workdir, ".git"))} ]; then exit 0; fi`,
      `mv -T "$tmp" ${q(workdir)}`,
    ].join("\n");
    await this.runGitWithCredentials(sandbox, creds, script, {
      what: `git clone of ${remoteUrl} in sandbox ${spec.name}`,
      onExit: 'rm -rf "$tmp"',
      timeoutSec: 900,
      signal: ctx.signal,
    });
    ctx.progress(`checked out ${branch}`);
  }

  /**
   * Push refs/heads/<branch> of the sandbox checkout to the same branch on `remoteUrl` — the URL
   * itself, not `origin` — exactly like the local provider (integrations/github/git.ts pushBranch
   * without `force`): a plain push, so a remote branch that has diverged is rejected, never
   * overwritten. The token travels like the clone's (runGitWithCredentials). Returns the commit
   * pushed (resolved before the push, so it is what the remote received even if the branch moves).
   */
  async pushBranch(
    handle: SandboxHandle,
    options: { remoteUrl: string; branch: string; accessToken: () => Promise<string>; timeoutMs?: number },
  ): Promise<{ sha: string }> {
    const branch = parseInput(BranchNameSchema, options.branch, "branch");
    const sandbox = await this.use(handle);
    // Minted after the sandbox is up (starting it can take a while; tokens are short-lived).
    const token = await options.accessToken();
    gitAuthEnv(options.remoteUrl, token); // http(s) URL without embedded credentials; well-formed token
    const timeoutSec = Math.max(1, Math.ceil((options.timeoutMs ?? 300_000) / 1000));
    const q = shQuote;
    const ref = `refs/heads/${branch}`;
    const script = [
      `sha=$(git rev-parse --verify --quiet ${q(`${ref}^{commit}`)}) || { echo "branch ${branch} does not exist in the sandbox checkout" >&2; exit 3; }`,
      `authgit push --porcelain ${q(options.remoteUrl)} "$sha:"${q(ref)}`,
      `echo "KILN_PUSHED_SHA=$sha"`,
    ].join("\n");
    const result = await this.runGitWithCredentials(sandbox, { username: "x-access-token", password: token }, script, {
      what: `git push of ${branch} to ${options.remoteUrl} from sandbox ${handle.name}`,
      cwd: handle.workdir,
      timeoutSec,
    });
    const sha = /^KILN_PUSHED_SHA=([0-9a-f]{40,64})$/m.exec(result.stdout)?.[1];
    if (!sha) throw new KilnError("internal", `git push of ${branch} from sandbox ${handle.name} reported no commit`);
    return { sha };
  }

  /**
   * Run a git script in the sandbox where `authgit` is git authenticated with `creds` (plain git
   * when null). The token reaches git only through a header file uploaded into a private (700) dir
   * → an env var of each `authgit` command: never in the command text the toolbox API records,
   * argv, the remote URL, .git/config or any log. The script's EXIT trap removes the file (then runs
   * `onExit`); if the run itself fails (toolbox timeout killed the script before its trap ran), it
   * is removed once more. A non-zero exit throws `unavailable` with the output, secrets redacted.
   */
  private async runGitWithCredentials(
    sandbox: Sandbox,
    creds: GitCredentials | null,
    body: string,
    options: { what: string; cwd?: string; timeoutSec: number; onExit?: string; signal?: AbortSignal },
  ): Promise<ExecResult> {
    const q = shQuote;
    const secretsDir = path.posix.join(await this.home(sandbox), ".kiln");
    const authFile = path.posix.join(secretsDir, `git-auth-${randomBytes(6).toString("hex")}`);
    const basic = creds ? Buffer.from(`${creds.username}:${creds.password}`).toString("base64") : "";
    if (creds) {
      const mk = await this.run(sandbox, `mkdir -p -m 700 ${q(secretsDir)} && chmod 700 ${q(secretsDir)}`, { timeoutSec: 30 });
      if (mk.exitCode !== 0) throw new KilnError("unavailable", `cannot create ${secretsDir} in sandbox ${sandbox.name}: ${mk.stderr || mk.stdout}`);
      await daytonaCall("upload git credentials", () => sandbox.fs.uploadFile(Buffer.from(`Authorization: Basic ${basic}`), authFile));
    }
    const script = [
      "set -eu",
      `auth=${q(authFile)}`,
      "kiln_cleanup() {",
      `  rm -f "$auth"`,
      ...(options.onExit ? [`  ${options.onExit}`] : []),
      "}",
      "trap kiln_cleanup EXIT",
      "export GIT_TERMINAL_PROMPT=0",
      "authgit() {",
      `  if [ -f "$auth" ]; then`,
      `    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="$(cat "$auth")" git "$@"`,
      "  else",
      `    git "$@"`,
      "  fi",
      "}",
      body,
    ].join("\n");
    let result: ExecResult;
    try {
      result = await this.abortable(
        this.run(sandbox, script, { ...(options.cwd ? { cwd: options.cwd } : {}), timeoutSec: options.timeoutSec }),
        options.signal,
      );
    } catch (error) {
      // Aborted: the script is still running and its trap cleans up. Otherwise make sure of it.
      if (creds && !options.signal?.aborted) {
        await this.run(sandbox, `rm -f ${q(authFile)}`, { timeoutSec: 30 }).catch((cleanupError: unknown) =>
          this.log(`could not remove git credentials file in ${sandbox.name}: ${errorMessage(cleanupError)}`),
        );
      }
      throw error;
    }
    if (result.exitCode !== 0) {
      const output = redactSecrets(`${result.stderr}\n${result.stdout}`.trim(), creds ? [creds.password, basic] : []).slice(-2000);
      throw new KilnError("unavailable", `${options.what} failed (exit ${result.exitCode}): ${output}`);
    }
    return result;
  }

  // ---------------------------------------------------------------- toolbox

  /** Run a shell script through the toolbox (see shell.ts for why it is wrapped). */
  private async run(
    sandbox: Sandbox,
    script: string,
    options: { cwd?: string; timeoutSec?: number } = {},
  ): Promise<ExecResult> {
    const wrapped = wrapScript(script);
    const started = Date.now();
    const response = await daytonaCall("execute command", () =>
      sandbox.process.executeCommand(wrapped.command, options.cwd, undefined, options.timeoutSec ?? 600),
    );
    const { stdout, stderr } = wrapped.split(response.result);
    return { exitCode: response.exitCode ?? -1, stdout, stderr, durationMs: Date.now() - started };
  }

  private resolvePath(handle: SandboxHandle, file: string): string {
    return path.posix.isAbsolute(file) ? file : path.posix.join(handle.workdir, file);
  }

  async exec(handle: SandboxHandle, command: string, options: { cwd?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const sandbox = await this.use(handle);
    const timeoutSec = Math.max(1, Math.ceil((options.timeoutMs ?? 600_000) / 1000));
    return this.run(sandbox, command, { cwd: options.cwd ? this.resolvePath(handle, options.cwd) : handle.workdir, timeoutSec });
  }

  async readFile(handle: SandboxHandle, file: string): Promise<string> {
    const sandbox = await this.use(handle);
    const target = this.resolvePath(handle, file);
    const data = await daytonaCall(`read ${target}`, () => sandbox.fs.downloadFile(target));
    return Buffer.from(data).toString("utf8");
  }

  async writeFile(handle: SandboxHandle, file: string, content: string): Promise<void> {
    const sandbox = await this.use(handle);
    const target = this.resolvePath(handle, file);
    const mk = await this.run(sandbox, `mkdir -p ${shQuote(path.posix.dirname(target))}`, { timeoutSec: 30 });
    if (mk.exitCode !== 0) throw new KilnError("unavailable", `cannot create ${path.posix.dirname(target)}: ${mk.stderr || mk.stdout}`);
    await daytonaCall(`write ${target}`, () => sandbox.fs.uploadFile(Buffer.from(content, "utf8"), target));
  }

  // ---------------------------------------------------------------- daemon

  /** Health through the preview proxy. `detail` says why it is not ok (for the deadline error). */
  private async probe(endpoint: AgentEndpoint): Promise<{ state: "ok" | "wrong-token" | "down"; detail: string }> {
    let response: Response;
    try {
      response = await fetch(`${endpoint.baseUrl}/v1/health`, {
        headers: { ...endpoint.headers, authorization: `Bearer ${endpoint.token}` },
        signal: AbortSignal.timeout(5000),
      });
    } catch (error) {
      // Nothing listening yet / proxy not ready: the caller retries until its deadline.
      return { state: "down", detail: errorMessage(error) };
    }
    const body = await response.text();
    if (response.ok) return { state: "ok", detail: "" };
    // The daemon's own 401 (token_invalid) means one is running with another token.
    if (response.status === 401 && body.includes("token_invalid")) return { state: "wrong-token", detail: "daemon token mismatch" };
    return { state: "down", detail: `HTTP ${response.status}: ${body.slice(0, 200)}` };
  }

  private async checkAgent(endpoint: AgentEndpoint, agent: string): Promise<void> {
    const response = await fetch(`${endpoint.baseUrl}/v1/agents/${encodeURIComponent(agent)}`, {
      headers: { ...endpoint.headers, authorization: `Bearer ${endpoint.token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) throw new KilnError("unavailable", `sandbox-agent rejected agent ${agent} (${response.status}): ${text.slice(0, 300)}`);
    const body = JSON.parse(text) as { installed?: unknown };
    if (body.installed !== true) {
      throw new KilnError("not_ready", `agent ${agent} is not installed in snapshot ${this.options.snapshotName}; rebuild the snapshot`);
    }
  }

  async ensureDaemon(handle: SandboxHandle, options: EnsureDaemonOptions, ctx: StepContext): Promise<AgentEndpoint> {
    const sandbox = await this.use(handle, ctx);
    // Preview tokens rotate when a sandbox restarts, so fetch a fresh link every time.
    const preview = await daytonaCall(`preview link for port ${this.port}`, () => sandbox.getPreviewLink(this.port));
    const endpoint: AgentEndpoint = {
      baseUrl: preview.url.replace(/\/+$/, ""),
      token: options.token,
      headers: { [PREVIEW_TOKEN_HEADER]: preview.token },
    };
    if ((await this.probe(endpoint)).state === "ok") {
      await this.checkAgent(endpoint, options.agent);
      return endpoint;
    }
    ctx.progress("starting sandbox-agent daemon");
    const home = await this.home(sandbox);
    const kilnDir = path.posix.join(home, ".kiln");
    const envFile = path.posix.join(kilnDir, "daemon.env");
    const pidFile = path.posix.join(kilnDir, "daemon.pid");
    const logFile = path.posix.join(kilnDir, "daemon.log");
    // Stop a stale daemon (wrong token, hung) via its pid file; the session may not own it anymore.
    const stop = await this.run(
      sandbox,
      [
        `mkdir -p -m 700 ${shQuote(kilnDir)} && chmod 700 ${shQuote(kilnDir)}`,
        `if [ -f ${shQuote(pidFile)} ]; then`,
        `  pid=$(cat ${shQuote(pidFile)}); kill "$pid" 2>/dev/null || true`,
        `  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done`,
        `  kill -9 "$pid" 2>/dev/null || true; rm -f ${shQuote(pidFile)}`,
        "fi",
      ].join("\n"),
      { timeoutSec: 30 },
    );
    if (stop.exitCode !== 0) throw new KilnError("unavailable", `cannot prepare daemon start: ${stop.stderr || stop.stdout}`);
    // Secrets travel as a file (multipart upload), not in the command text the API records.
    const env = {
      ...options.env,
      KILN_DAEMON_TOKEN: options.token,
      SANDBOX_AGENT_REQUIRE_PREINSTALL: "1",
      SANDBOX_AGENT_ACP_REQUEST_TIMEOUT_MS: "3600000",
      // Logs to the session log file (~/.kiln/daemon.log) so a failed start can show why.
      SANDBOX_AGENT_LOG_STDOUT: "1",
    };
    const envText = Object.entries(env)
      .filter(([key]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      .map(([key, value]) => `export ${key}=${shQuote(value)}`)
      .join("\n");
    await daytonaCall("upload daemon environment", () => sandbox.fs.uploadFile(Buffer.from(`${envText}\n`), envFile));
    try {
      await sandbox.process.deleteSession(DAEMON_SESSION);
    } catch (error) {
      if (!isNotFound(error)) throw toKilnError("reset daemon session", error);
    }
    await daytonaCall("create daemon session", () => sandbox.process.createSession(DAEMON_SESSION));
    // The daemon runs in the background of a dedicated session (runAsync); `exec` keeps $! = its pid.
    const command =
      `(cd ${shQuote(handle.workdir)} && . ${shQuote(envFile)} && rm -f ${shQuote(envFile)} && ` +
      `exec sandbox-agent server --host 0.0.0.0 --port ${this.port} --token="$KILN_DAEMON_TOKEN" --no-telemetry) ` +
      `> ${shQuote(logFile)} 2>&1 & echo $! > ${shQuote(pidFile)}; wait $!`;
    const started = await daytonaCall("start daemon", () =>
      sandbox.process.executeSessionCommand(DAEMON_SESSION, { command, runAsync: true }),
    );
    const cmdId = started.cmdId;
    const deadline = Date.now() + (this.options.daemonHealthTimeoutMs ?? 60_000);
    let lastExitCheck = 0;
    let lastProbe = "not probed";
    while (Date.now() < deadline) {
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      // Did the daemon exit (bad flag, port taken)? Checked first and then once a second.
      if (Date.now() - lastExitCheck > 1000 && cmdId) {
        lastExitCheck = Date.now();
        const cmd = await daytonaCall("daemon status", () => sandbox.process.getSessionCommand(DAEMON_SESSION, cmdId));
        if (cmd.exitCode !== undefined && cmd.exitCode !== null) {
          const tail = await this.run(sandbox, `tail -c 2000 ${shQuote(logFile)} 2>/dev/null || true`, { timeoutSec: 30 });
          const secrets = Object.values(env).filter((v) => v.length >= 6);
          throw new KilnError(
            "unavailable",
            `sandbox-agent exited (code ${cmd.exitCode}) before becoming healthy: ${redactSecrets(tail.stdout, secrets)}`,
          );
        }
      }
      const probe = await this.probe(endpoint);
      if (probe.state === "ok") {
        await this.checkAgent(endpoint, options.agent);
        ctx.progress("sandbox-agent daemon healthy");
        return endpoint;
      }
      lastProbe = probe.detail;
      await sleep(200, ctx.signal);
    }
    throw new KilnError(
      "timeout",
      `sandbox-agent in ${handle.name} was not healthy within ${Math.round((this.options.daemonHealthTimeoutMs ?? 60_000) / 1000)}s (last health check: ${lastProbe})`,
    );
  }
}

