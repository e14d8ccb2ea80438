// One small interface for every sandbox backend (local worktree, Daytona). The task actor's provision
// steps call it; every method must be idempotent because workflow steps are at-least-once.
import type { AgentId, ExecResult, ProviderId } from "@kiln/shared";

export interface SandboxSpec {
  /** Deterministic name (`task-<taskId>`): createOrGet looks it up before creating. */
  name: string;
  repo: {
    remoteUrl: string;
    baseBranch: string;
    /** The task branch, created from baseBranch when it does not exist yet. */
    branch: string;
    /**
     * For private https remotes (GitHub App installation token, user `x-access-token`): called right
     * before each fetch/clone; the token goes only into that git command's environment — never into
     * the repo config, the remote URL, argv or logs. Absent: clone anonymously.
     */
    accessToken?: () => Promise<string>;
  };
  /** Labels to find sandboxes later (reaper, list): app, org, task. */
  labels: Record<string, string>;
  /** Environment for the agent daemon (agent API keys). Never logged. */
  env: Record<string, string>;
}

export interface SandboxHandle {
  provider: ProviderId;
  /** Provider's id for the sandbox (local: the name; Daytona: the sandbox id). */
  sandboxId: string;
  name: string;
  /** Absolute path of the repository checkout inside the sandbox. */
  workdir: string;
  state: "running" | "stopped";
  labels: Record<string, string>;
}

/** How the backend reaches the sandbox-agent daemon of a sandbox. */
export interface AgentEndpoint {
  baseUrl: string;
  /** Per-sandbox daemon token (Authorization: Bearer). Secret: never sent to clients or logs. */
  token: string;
  /** Extra headers needed by the provider's proxy (e.g. Daytona preview token). Secret. */
  headers: Record<string, string>;
}

export interface StepContext {
  signal: AbortSignal;
  /** Progress line shown on the running step (e.g. build logs). */
  progress(line: string): void;
}

export interface EnsureDaemonOptions {
  agent: AgentId;
  /** Token to start the daemon with; reused if the daemon is already running. */
  token: string;
  env: Record<string, string>;
}

export interface SandboxProvider {
  readonly id: ProviderId;
  /** Find the sandbox by name, start it if stopped, or create it; then make sure the repo is checked out. */
  createOrGet(spec: SandboxSpec, ctx: StepContext): Promise<SandboxHandle>;
  get(name: string): Promise<SandboxHandle | null>;
  listByLabels(labels: Record<string, string>): Promise<SandboxHandle[]>;
  /** Start (or find) the sandbox-agent daemon and wait until healthy, with a deadline. */
  ensureDaemon(handle: SandboxHandle, options: EnsureDaemonOptions, ctx: StepContext): Promise<AgentEndpoint>;
  /** Run a shell command in the workdir (or `cwd`). */
  exec(handle: SandboxHandle, command: string, options?: { cwd?: string; timeoutMs?: number }): Promise<ExecResult>;
  readFile(handle: SandboxHandle, path: string): Promise<string>;
  writeFile(handle: SandboxHandle, path: string, content: string): Promise<void>;
  stop(name: string): Promise<void>;
  /**
   * Push `refs/heads/<branch>` of the sandbox checkout to the same branch on `remoteUrl`, authenticated
   * with a token from `accessToken` (same rules as SandboxSpec.repo.accessToken). Returns the pushed
   * commit. Optional: providers that cannot push yet omit it.
   */
  pushBranch?(
    handle: SandboxHandle,
    options: { remoteUrl: string; branch: string; accessToken: () => Promise<string>; timeoutMs?: number },
  ): Promise<{ sha: string }>;
  /** Stop the daemon and remove the sandbox. Succeeds when it is already gone. */
  destroy(name: string): Promise<void>;
  /**
   * The task is no longer live but its sandbox is kept: let the provider reclaim it when idle
   * (Daytona: re-enable auto-stop). Optional: providers without an idle policy omit it.
   */
  release?(name: string): Promise<void>;
  /**
   * Delete this provider's Kiln sandboxes (matching `labels`, e.g. `{ org }`) whose `task` label is
   * not in `listLiveTaskIds()` (read after listing, so a task created meanwhile counts as live).
   * Returns the names deleted. Optional: the maintenance actor calls it on providers that have it.
   */
  reapOrphans?(listLiveTaskIds: () => Promise<Iterable<string>>, labels?: Record<string, string>): Promise<string[]>;
  /** Release client resources (connections) on shutdown. */
  close?(): Promise<void>;
}
