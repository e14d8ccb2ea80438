// Child processes with deadlines and bounded output. Arguments are always arrays: no shell injection.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { KilnError, type ExecResult } from "@kiln/shared";

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Use `env` as the whole environment instead of adding it to the backend's (sandboxed commands). */
  replaceEnv?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Text written to stdin. */
  input?: string;
  maxOutputBytes?: number;
  /** Replace these substrings in error messages (tokens). */
  redact?: string[];
}

export function redactText(text: string, secrets: string[] = []): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join("***");
  return out;
}

export function run(command: string, args: string[], options: RunOptions = {}): Promise<ExecResult> {
  const started = Date.now();
  const max = options.maxOutputBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.replaceEnv ? (options.env ?? {}) : options.env ? { ...process.env, ...options.env } : process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const append = (current: string, chunk: Buffer) =>
      current.length >= max ? current : current + chunk.toString("utf8").slice(0, max - current.length);
    child.stdout.on("data", (c: Buffer) => (stdout = append(stdout, c)));
    child.stderr.on("data", (c: Buffer) => (stderr = append(stderr, c)));
    let timedOut = false;
    const kill = () => child.kill("SIGKILL");
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          kill();
        }, options.timeoutMs)
      : undefined;
    const onAbort = () => kill();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    child.on("error", (error) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      reject(new KilnError("internal", `could not run ${command}: ${error.message}`));
    });
    child.on("close", (code, signalName) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      const durationMs = Date.now() - started;
      if (timedOut) {
        reject(new KilnError("timeout", `${command} ${args[0] ?? ""} timed out after ${options.timeoutMs}ms`));
        return;
      }
      if (options.signal?.aborted) {
        reject(new KilnError("timeout", `${command} ${args[0] ?? ""} was cancelled`));
        return;
      }
      resolve({ exitCode: code ?? (signalName ? 128 : 1), stdout, stderr, durationMs });
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

/** Run and require exit code 0; the error names the command and its stderr (secrets redacted). */
export async function runChecked(command: string, args: string[], options: RunOptions = {}): Promise<ExecResult> {
  const result = await run(command, args, options);
  if (result.exitCode !== 0) {
    const detail = redactText((result.stderr || result.stdout).trim(), options.redact).slice(-2000);
    const shown = redactText(`${command} ${args.slice(0, 3).join(" ")}`, options.redact);
    throw new KilnError("internal", `${shown} failed (exit ${result.exitCode}): ${detail}`);
  }
  return result;
}

export function git(args: string[], options: RunOptions = {}): Promise<ExecResult> {
  return runChecked("git", args, {
    timeoutMs: 120_000,
    ...options,
    env: { GIT_TERMINAL_PROMPT: "0", ...options.env },
  });
}

/** The abort reason when it is an Error, else a `timeout` KilnError. */
export function abortError(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new KilnError("timeout", "operation aborted");
}

/** Resolve after `ms`, or reject as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Ask the OS for a free loopback port. */
export async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** True while the process runs. A zombie (exited, not yet reaped by its parent) counts as gone. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (pid < 0) return true; // a process group: signal 0 reached a member
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false; // gone between the two checks
  }
}

/**
 * SIGTERM, then SIGKILL after `graceMs` if still alive. Resolves once it is gone. With `group`, signals
 * the whole process group (a detached daemon and the agent processes it started).
 */
export async function terminate(pid: number, graceMs = 3000, group = false): Promise<void> {
  if (group) pid = -Math.abs(pid);
  if (!isProcessAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return; // already gone between the check and the signal
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  while (isProcessAlive(pid)) await sleep(20);
}
