// Runs the real sandbox-agent daemon binary (npm @sandbox-agent/cli-linux-x64) for a local sandbox.
// The daemon is detached so it survives a backend crash; its pid and port live in a state file so a
// replayed `ensure-agent` step finds it again instead of starting a second one.
import { randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { constants, openSync, closeSync } from "node:fs";
import { access, chmod, copyFile, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { KilnError } from "@kiln/shared";
import { freePort, isProcessAlive, sleep, terminate } from "../../util/process.ts";
import { processTree, scrubArgv } from "./argv-scrub.ts";
import { sandboxEnv } from "./sandbox-env.ts";

const SANDBOX_AGENT_VERSION = "0.4.2";

/**
 * Path of an executable daemon binary. Package managers that skip install scripts leave the npm
 * binary without its exec bit, so we copy it once into the data dir (never chmod the shared cache).
 */
export async function resolveDaemonBinary(dataDir: string): Promise<string> {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve("@sandbox-agent/cli-linux-x64/package.json");
  const source = path.join(path.dirname(packageJson), "bin", "sandbox-agent");
  try {
    await access(source, constants.X_OK);
    return source;
  } catch {
    const target = path.join(dataDir, "bin", `sandbox-agent-${SANDBOX_AGENT_VERSION}`);
    try {
      await access(target, constants.X_OK);
      return target;
    } catch {
      await mkdir(path.dirname(target), { recursive: true });
      const tmp = `${target}.${randomUUID()}.tmp`;
      await copyFile(source, tmp);
      await chmod(tmp, 0o755);
      await rename(tmp, target);
      return target;
    }
  }
}

interface DaemonState {
  pid: number;
  port: number;
}

export interface LocalDaemonOptions {
  binary: string;
  /** Shared XDG_DATA_HOME: installed agents and launchers live here. */
  agentHome: string;
  /** Per-sandbox directory for the state file and log. */
  stateDir: string;
  token: string;
  /** Agent credentials (filtered to the agent credential names). */
  env: Record<string, string>;
  /** HOME of the daemon and its agents (per sandbox). */
  home: string;
  /** bwrap arguments up to `--` (isolation.ts); absent: run unconfined. */
  bubblewrap?: string[];
  healthTimeoutMs: number;
  signal?: AbortSignal;
}

const stateFile = (stateDir: string) => path.join(stateDir, "daemon.json");

/** The recorded daemon, if its pid still belongs to a sandbox-agent server (pids get reused). */
async function readState(stateDir: string): Promise<DaemonState | null> {
  let state: DaemonState;
  try {
    state = JSON.parse(await readFile(stateFile(stateDir), "utf8")) as DaemonState;
  } catch {
    return null; // no daemon recorded yet
  }
  if (!isProcessAlive(state.pid)) return null;
  try {
    const cmdline = await readFile(`/proc/${state.pid}/cmdline`, "utf8");
    return cmdline.includes("sandbox-agent") && cmdline.includes(`${state.port}`) ? state : null;
  } catch {
    return null; // exited since the liveness check
  }
}

export async function checkHealth(baseUrl: string, token: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const response = await fetch(`${baseUrl}/v1/health`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    return response.ok;
  } catch {
    return false; // not listening yet / refused
  }
}

async function tailLog(logPath: string, lines = 20): Promise<string> {
  try {
    return (await readFile(logPath, "utf8")).trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no daemon log)";
  }
}

/** Find the sandbox's running daemon, or start one; resolves with its base URL once healthy. */
export async function ensureLocalDaemon(options: LocalDaemonOptions): Promise<{ baseUrl: string; pid: number }> {
  await mkdir(options.stateDir, { recursive: true });
  const existing = await readState(options.stateDir);
  if (existing) {
    const baseUrl = `http://127.0.0.1:${existing.port}`;
    if (await checkHealth(baseUrl, options.token)) return { baseUrl, pid: existing.pid };
    // Alive but not answering with our token: a stale or foreign process. Replace it.
    await terminate(existing.pid, 3000, true);
  }

  const port = await freePort();
  const logPath = path.join(options.stateDir, "daemon.log");
  const log = openSync(logPath, "a");
  const daemonArgs = ["server", "--host", "127.0.0.1", "--port", String(port), `--token=${options.token}`, "--no-telemetry"];
  // Allow-list only: the daemon and its agents never see the backend's secrets.
  const env = sandboxEnv({
    home: options.home,
    agentHome: options.agentHome,
    credentials: options.env,
    extra: {
      SANDBOX_AGENT_LOG_STDOUT: "1",
      // Longer than any turn: the daemon's own timeout hangs requests instead of failing them.
      SANDBOX_AGENT_ACP_REQUEST_TIMEOUT_MS: String(6 * 60 * 60_000),
    },
  });
  // Under bubblewrap, XDG_DATA_HOME goes to the daemon only (--setenv), so bwrap itself is not
  // mistaken for a daemon of this data dir by tools that match on it.
  const { XDG_DATA_HOME, ...outerEnv } = env;
  const [command, args, spawnEnv] = options.bubblewrap
    ? ["bwrap", [...options.bubblewrap.slice(0, -1), "--setenv", "XDG_DATA_HOME", XDG_DATA_HOME ?? options.agentHome, "--", options.binary, ...daemonArgs], outerEnv]
    : [options.binary, daemonArgs, env];
  // `--token=<value>`: a value starting with "-" must not be parsed as a flag. It is scrubbed from argv below.
  const child = spawn(command, args, { detached: true, stdio: ["ignore", log, log], env: spawnEnv });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new KilnError("internal", "sandbox-agent daemon did not start (no pid)");
  let exitCode: number | null = null;
  child.on("exit", (code) => (exitCode = code ?? -1));
  await writeFile(stateFile(options.stateDir), JSON.stringify({ pid, port } satisfies DaemonState));

  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + options.healthTimeoutMs;
  while (Date.now() < deadline) {
    if (options.signal?.aborted) {
      await terminate(pid);
      throw new KilnError("timeout", "waiting for the sandbox-agent daemon was cancelled");
    }
    if (exitCode !== null) {
      throw new KilnError("unavailable", `sandbox-agent daemon exited (code ${exitCode}):\n${await tailLog(logPath)}`);
    }
    if (await checkHealth(baseUrl, options.token, 1000)) {
      // Parsed and serving: take the token off its command line (argv-scrub.ts).
      try {
        for (const process of processTree(pid)) scrubArgv(process, options.token);
      } catch (error) {
        await terminate(pid, 3000, true);
        throw error;
      }
      return { baseUrl, pid };
    }
    await sleep(50);
  }
  await terminate(pid);
  throw new KilnError(
    "timeout",
    `sandbox-agent daemon was not healthy within ${options.healthTimeoutMs}ms:\n${await tailLog(logPath)}`,
  );
}

/** Stop the sandbox's daemon if one is recorded. Its agent processes exit when their stdin closes. */
export async function stopLocalDaemon(stateDir: string): Promise<void> {
  const state = await readState(stateDir);
  if (state) await terminate(state.pid, 3000, true);
}

export async function daemonPid(stateDir: string): Promise<number | null> {
  return (await readState(stateDir))?.pid ?? null;
}
