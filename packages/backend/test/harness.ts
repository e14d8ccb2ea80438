// Test harness: runs the real backend as a child process (embedded engine, real sandbox-agent daemon,
// scripted agent) on free ports with a temp data dir, and makes fixture git repos.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BACKEND_DIR = fileURLToPath(new URL("..", import.meta.url));
const BUN = process.env.KILN_BUN ?? "bun";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Engine ports are P, P+1 and P+10: find a P where all three are free. */
async function freeEnginePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const ok = await Promise.all([base, base + 1, base + 10].map(isFree));
    if (ok.every(Boolean)) return base;
  }
  throw new Error("no free engine port range");
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Every temp dir made here, removed when the process exits (scripts such as the bench). */
const tempDirs = new Set<string>();

/**
 * A fresh temp dir (fixture repo, marker, data dir). Under vitest it lives in the run's own temp dir
 * (KILN_TEST_TMPDIR, removed after the run: workers end without an "exit" event).
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(process.env.KILN_TEST_TMPDIR ?? os.tmpdir(), `kiln-${prefix}-`));
  if (tempDirs.size === 0) {
    process.once("exit", () => {
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  tempDirs.add(dir);
  return dir;
}

/** A git repo with one commit on `main` (and optionally more files). */
export function makeGitRepo(files: Record<string, string> = { "README.md": "# fixture\n" }): string {
  const dir = tempDir("repo");
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: dir, env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" } });
  git("init", "-q", "-b", "main");
  for (const [file, content] of Object.entries(files)) writeFileSync(path.join(dir, file), content);
  git("add", ".");
  git("commit", "-qm", "initial commit");
  return dir;
}

export interface Backend {
  url: string;
  dataDir: string;
  enginePort: number;
  process: ChildProcess;
  log(): string;
  /** kill -9 the backend process (the engine, orphaned by design, keeps running). */
  crash(): Promise<void>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL the embedded engine (it outlives the backend by design). */
  killEngine(): void;
  /** Kill the engine too and remove the data dir. */
  destroy(): Promise<void>;
}

export interface BackendOptions {
  dataDir?: string;
  /** HTTP port (default: a free one). Pass one when the env must contain the backend's own URL. */
  port?: number;
  enginePort?: number;
  env?: Record<string, string>;
}

export async function startBackend(options: BackendOptions = {}): Promise<Backend> {
  const dataDir = options.dataDir ?? tempDir("data");
  const port = options.port ?? (await freePort());
  const enginePort = options.enginePort ?? (await freeEnginePort());
  let output = "";
  const child = spawn(BUN, ["src/main.ts"], {
    cwd: BACKEND_DIR,
    env: {
      ...process.env,
      KILN_DATA_DIR: dataDir,
      KILN_PORT: String(port),
      KILN_ENGINE_PORT: String(enginePort),
      KILN_POOL: `test-${enginePort}`,
      KILN_WATCHDOG_INTERVAL_MS: "5000",
      KILN_FRONTEND_DIST: "",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // KILN_TEST_BACKEND_LOG=1 streams the backend's output (debugging a failing suite).
  const echo = process.env.KILN_TEST_BACKEND_LOG === "1";
  const capture = (d: Buffer) => {
    output += d.toString();
    if (echo) process.stderr.write(`[backend] ${d.toString()}`);
  };
  child.stdout?.on("data", capture);
  child.stderr?.on("data", capture);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`backend exited during start:\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`backend did not become healthy in 60 s:\n${output}`);
    }
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const killEngine = () => {
    const runtime = path.join(dataDir, "engine/.rivetkit/var/engine/runtime.json");
    if (!existsSync(runtime)) return;
    const { pid } = JSON.parse(readFileSync(runtime, "utf8")) as { pid: number };
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  };

  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    await exited;
  };

  return {
    url,
    dataDir,
    enginePort,
    process: child,
    log: () => output,
    async crash() {
      child.kill("SIGKILL");
      await exited;
    },
    stop,
    killEngine,
    async destroy() {
      await stop();
      killEngine();
      killDaemons(dataDir);
      // A daemon surviving its test would pile up across the suite (bwrap made the old group kill miss).
      await waitFor("the data dir's daemons to exit", () => daemonPids(dataDir).length === 0, 10_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Kill any sandbox-agent daemon a test left behind in this data dir. */
export function killDaemons(dataDir: string): void {
  for (const pid of daemonPids(dataDir)) {
    // Under bubblewrap the daemon is not its process group's leader (the outer bwrap is): kill the
    // group it is in, which holds bwrap and the agents too, then the daemon itself.
    for (const target of [-(processGroupOf(pid) ?? pid), pid]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** The process group of `pid` (field 5 of /proc/<pid>/stat, after the parenthesised command name). */
function processGroupOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    return Number.isInteger(pgid) && pgid > 1 ? pgid : null;
  } catch {
    return null; // exited
  }
}

/** Pids of live sandbox-agent daemons started for this data dir (their XDG_DATA_HOME points into it). */
export function daemonPids(dataDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (!cmdline.includes("sandbox-agent") || !cmdline.includes("server")) continue;
      const environ = readFileSync(`/proc/${entry}/environ`, "utf8");
      if (environ.includes(`XDG_DATA_HOME=${path.join(dataDir, "agent-home")}`)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}
