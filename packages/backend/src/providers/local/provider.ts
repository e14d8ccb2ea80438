// The embedded default sandbox: a git worktree per task under the data dir, with the real
// sandbox-agent daemon on 127.0.0.1. Repos are cached as bare clones; each task's worktree is
// created from the cache on the task branch, so the user's own checkout is never touched.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { type ExecResult, KilnError } from "@kiln/shared";
import { SCRIPTED_AGENT_PATH, installScriptedAgentLauncher } from "../../agents/scripted-agent.ts";
import { gitAuthEnv, pushBranch as pushWithToken } from "../../integrations/github/git.ts";
import { createKeyedQueue } from "../../util/keyed-queue.ts";
import { git, run, sleep } from "../../util/process.ts";
import type {
  AgentEndpoint,
  EnsureDaemonOptions,
  SandboxHandle,
  SandboxProvider,
  SandboxSpec,
  StepContext,
} from "../types.ts";
import { readConfined, writeConfined } from "./confine.ts";
import { ensureLocalDaemon, resolveDaemonBinary, stopLocalDaemon } from "./daemon.ts";
import { type IsolationMode, bubblewrapArgs } from "./isolation.ts";
import { sandboxEnv } from "./sandbox-env.ts";

export interface LocalProviderOptions {
  dataDir: string;
  daemonHealthTimeoutMs?: number;
  /** Test hook: pause inside createOrGet so a test can kill the backend mid-step. */
  createDelayMs?: number;
  /** Run sandbox processes under bubblewrap (isolation.ts); default none. */
  isolation?: IsolationMode;
}

interface SandboxMeta {
  name: string;
  labels: Record<string, string>;
  remoteUrl: string;
  branch: string;
  state: "running" | "stopped";
}

/** Serialise git operations on one cache repo (concurrent fetches fight over ref locks). */
const withRepoLock = createKeyedQueue();

export class LocalProvider implements SandboxProvider {
  readonly id = "local" as const;
  private readonly sandboxesDir: string;
  private readonly reposDir: string;
  private readonly agentHome: string;

  constructor(private readonly options: LocalProviderOptions) {
    this.sandboxesDir = path.join(options.dataDir, "sandboxes");
    this.reposDir = path.join(options.dataDir, "repos");
    this.agentHome = path.join(options.dataDir, "agent-home");
  }

  private dir(name: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new KilnError("invalid_input", `bad sandbox name ${name}`);
    return path.join(this.sandboxesDir, name);
  }

  private workdir(name: string): string {
    return path.join(this.dir(name), "repo");
  }

  private cacheDir(remoteUrl: string): string {
    const hash = createHash("sha1").update(remoteUrl).digest("hex").slice(0, 16);
    return path.join(this.reposDir, `${hash}.git`);
  }

  private async readMeta(name: string): Promise<SandboxMeta | null> {
    try {
      return JSON.parse(await readFile(path.join(this.dir(name), "sandbox.json"), "utf8")) as SandboxMeta;
    } catch {
      return null; // not created (or half-created and never recorded)
    }
  }

  private handle(meta: SandboxMeta): SandboxHandle {
    return {
      provider: "local",
      sandboxId: meta.name,
      name: meta.name,
      workdir: this.workdir(meta.name),
      state: meta.state,
      labels: meta.labels,
    };
  }

  /**
   * Bare clone of the remote, refreshed with a fetch; remote branches land in refs/remotes/origin. With
   * `accessToken`, a fresh token reaches only the clone/fetch command's environment (gitAuthEnv): the
   * cache's config and `origin` URL stay credential-free, and error text is redacted.
   */
  private async syncCache(remoteUrl: string, signal: AbortSignal, accessToken?: () => Promise<string>): Promise<string> {
    const cache = this.cacheDir(remoteUrl);
    return withRepoLock(cache, async () => {
      let auth: { env?: Record<string, string>; redact?: string[] } = {};
      if (accessToken) {
        const token = await accessToken();
        auth = {
          env: gitAuthEnv(remoteUrl, token),
          redact: [token, Buffer.from(`x-access-token:${token}`, "utf8").toString("base64")],
        };
      }
      // A crash mid-clone used to leave a cache with only `remote.origin.url` (no fetch refspec, no
      // origin refs) that broke every later task on the repo: repair a torn cache, and build a new one
      // in a temp dir that is renamed into place only once it is complete.
      if (existsSync(path.join(cache, "HEAD")) && !(await this.cacheComplete(cache))) {
        await rm(cache, { recursive: true, force: true });
      }
      if (!existsSync(path.join(cache, "HEAD"))) {
        await rm(cache, { recursive: true, force: true });
        await mkdir(this.reposDir, { recursive: true });
        const tmp = `${cache}.tmp-${process.pid}-${Date.now()}`;
        try {
          await git(["clone", "--bare", "--quiet", remoteUrl, tmp], { signal, ...auth });
          await git(["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], { cwd: tmp });
          await git(["fetch", "--quiet", "--prune", "origin"], { cwd: tmp, signal, ...auth });
          await rename(tmp, cache);
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
        return cache;
      }
      await git(["fetch", "--quiet", "--prune", "origin"], { cwd: cache, signal, ...auth });
      return cache;
    });
  }

  /** Push the task branch from the worktree with a fresh token (see integrations/github/git.ts). */
  async pushBranch(
    handle: SandboxHandle,
    options: { remoteUrl: string; branch: string; accessToken: () => Promise<string>; timeoutMs?: number },
  ): Promise<{ sha: string }> {
    const token = await options.accessToken();
    return pushWithToken({
      cwd: handle.workdir,
      remoteUrl: options.remoteUrl,
      branch: options.branch,
      token,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
  }

  async createOrGet(spec: SandboxSpec, ctx: StepContext): Promise<SandboxHandle> {
    const existing = await this.readMeta(spec.name);
    if (existing && existsSync(path.join(this.workdir(spec.name), ".git"))) {
      if (existing.state === "stopped") await this.writeMeta({ ...existing, state: "running" });
      return this.handle({ ...existing, state: "running" });
    }
    if (this.options.createDelayMs) {
      ctx.progress(`test delay ${this.options.createDelayMs}ms`);
      await sleep(this.options.createDelayMs, ctx.signal);
    }
    ctx.progress(`fetching ${spec.repo.remoteUrl}`);
    const cache = await this.syncCache(spec.repo.remoteUrl, ctx.signal, spec.repo.accessToken);
    const workdir = this.workdir(spec.name);
    await mkdir(this.dir(spec.name), { recursive: true });
    try {
      await this.addWorktree(cache, workdir, spec, ctx);
    } catch (error) {
      // Leave no empty sandboxes/task-* dir behind a failed create (nothing was recorded yet).
      await rm(this.dir(spec.name), { recursive: true, force: true });
      throw error;
    }
    // Commits made by agents need an identity; keep it local to the worktree.
    await git(["config", "user.name", "Kiln Agent"], { cwd: workdir });
    await git(["config", "user.email", "agent@kiln.local"], { cwd: workdir });
    const meta: SandboxMeta = {
      name: spec.name,
      labels: spec.labels,
      remoteUrl: spec.repo.remoteUrl,
      branch: spec.repo.branch,
      state: "running",
    };
    await this.writeMeta(meta);
    return this.handle(meta);
  }

  /** A usable cache has the origin fetch refspec and at least one origin ref. */
  private async cacheComplete(cache: string): Promise<boolean> {
    const refspec = await run("git", ["config", "--get", "remote.origin.fetch"], { cwd: cache, timeoutMs: 30_000 });
    if (refspec.exitCode !== 0) return false;
    const refs = await run("git", ["for-each-ref", "--count=1", "refs/remotes/origin/"], { cwd: cache, timeoutMs: 30_000 });
    return refs.exitCode === 0 && refs.stdout.trim() !== "";
  }

  private async addWorktree(cache: string, workdir: string, spec: SandboxSpec, ctx: StepContext): Promise<void> {
    await withRepoLock(cache, async () => {
      // A crash between `worktree add` and writing the meta file leaves a half-made worktree: start over.
      if (existsSync(workdir)) await rm(workdir, { recursive: true, force: true });
      await git(["worktree", "prune"], { cwd: cache });
      const { branch, baseBranch } = spec.repo;
      const hasLocal = await this.refExists(cache, `refs/heads/${branch}`);
      const hasRemote = await this.refExists(cache, `refs/remotes/origin/${branch}`);
      const hasBase = await this.refExists(cache, `refs/remotes/origin/${baseBranch}`);
      ctx.progress(`creating worktree on ${branch}`);
      if (hasLocal) {
        await git(["worktree", "add", "--quiet", workdir, branch], { cwd: cache, signal: ctx.signal });
      } else {
        const start = hasRemote ? `origin/${branch}` : hasBase ? `origin/${baseBranch}` : null;
        if (!start) throw new KilnError("not_found", `base branch "${baseBranch}" does not exist in ${spec.repo.remoteUrl}`);
        await git(["worktree", "add", "--quiet", "--no-track", "-b", branch, workdir, start], {
          cwd: cache,
          signal: ctx.signal,
        });
      }
    });
  }

  private async refExists(cwd: string, ref: string): Promise<boolean> {
    const result = await run("git", ["rev-parse", "--verify", "--quiet", ref], { cwd, timeoutMs: 30_000 });
    return result.exitCode === 0;
  }

  private async writeMeta(meta: SandboxMeta): Promise<void> {
    await writeFile(path.join(this.dir(meta.name), "sandbox.json"), JSON.stringify(meta, null, 2));
  }

  async get(name: string): Promise<SandboxHandle | null> {
    const meta = await this.readMeta(name);
    return meta ? this.handle(meta) : null;
  }

  async listByLabels(labels: Record<string, string>): Promise<SandboxHandle[]> {
    let names: string[];
    try {
      names = await readdir(this.sandboxesDir);
    } catch {
      return []; // no sandbox was ever created
    }
    const out: SandboxHandle[] = [];
    for (const name of names) {
      const meta = await this.readMeta(name);
      if (meta && Object.entries(labels).every(([k, v]) => meta.labels[k] === v)) out.push(this.handle(meta));
    }
    return out;
  }

  async ensureDaemon(handle: SandboxHandle, options: EnsureDaemonOptions, ctx: StepContext): Promise<AgentEndpoint> {
    const binary = await resolveDaemonBinary(this.options.dataDir);
    // The offline scripted agent serves `mock`; real agents run when installed in the agent home.
    await installScriptedAgentLauncher(this.agentHome, "mock");
    ctx.progress("starting sandbox-agent");
    const { baseUrl } = await ensureLocalDaemon({
      binary,
      agentHome: this.agentHome,
      stateDir: this.dir(handle.name),
      token: options.token,
      env: options.env,
      home: await this.home(handle.name),
      bubblewrap: await this.bubblewrap(handle, handle.workdir, [binary]),
      healthTimeoutMs: this.options.daemonHealthTimeoutMs ?? 20_000,
      signal: ctx.signal,
    });
    return { baseUrl, token: options.token, headers: {} };
  }

  private resolveInside(handle: SandboxHandle, file: string): string {
    const resolved = path.resolve(handle.workdir, file);
    if (resolved !== handle.workdir && !resolved.startsWith(`${handle.workdir}${path.sep}`)) {
      throw new KilnError("invalid_input", `path ${file} is outside the sandbox`);
    }
    return resolved;
  }

  /** HOME of the sandbox's processes (not the backend user's home). */
  private async home(name: string): Promise<string> {
    const home = path.join(this.dir(name), "home");
    await mkdir(home, { recursive: true });
    return home;
  }

  async exec(handle: SandboxHandle, command: string, options: { cwd?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const cwd = options.cwd ? this.resolveInside(handle, options.cwd) : handle.workdir;
    const env = sandboxEnv({ home: await this.home(handle.name), agentHome: this.agentHome });
    const wrap = await this.bubblewrap(handle, cwd, []);
    const [bin, args] = wrap ? ["bwrap", [...wrap, "bash", "-c", command]] : ["bash", ["-c", command]];
    return run(bin, args, { cwd, env, replaceEnv: true, timeoutMs: options.timeoutMs ?? 60_000 });
  }

  /** bwrap arguments for this sandbox, or undefined when isolation is off. */
  private async bubblewrap(handle: SandboxHandle, cwd: string, extra: string[]): Promise<string[] | undefined> {
    if (this.options.isolation !== "bubblewrap") return undefined;
    await mkdir(this.agentHome, { recursive: true });
    const node = (process.env.PATH ?? "").split(":").map((dir) => path.join(dir, "node")).find((file) => existsSync(file));
    return bubblewrapArgs(
      {
        workdir: handle.workdir,
        home: await this.home(handle.name),
        agentHome: this.agentHome,
        readOnly: [process.execPath, SCRIPTED_AGENT_PATH, ...(node ? [node] : []), ...extra],
      },
      cwd,
    );
  }

  readFile(handle: SandboxHandle, file: string): Promise<string> {
    return readConfined(handle.workdir, file);
  }

  writeFile(handle: SandboxHandle, file: string, content: string): Promise<void> {
    return writeConfined(handle.workdir, file, content);
  }

  async stop(name: string): Promise<void> {
    const meta = await this.readMeta(name);
    await stopLocalDaemon(this.dir(name));
    if (meta) await this.writeMeta({ ...meta, state: "stopped" });
  }

  async destroy(name: string): Promise<void> {
    const dir = this.dir(name);
    await stopLocalDaemon(dir);
    const meta = await this.readMeta(name);
    if (meta) {
      const cache = this.cacheDir(meta.remoteUrl);
      if (existsSync(cache)) {
        await withRepoLock(cache, async () => {
          await run("git", ["worktree", "remove", "--force", this.workdir(name)], { cwd: cache, timeoutMs: 60_000 });
          await rm(dir, { recursive: true, force: true });
          await git(["worktree", "prune"], { cwd: cache });
        });
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}
