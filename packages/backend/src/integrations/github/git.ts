// git clone/push over HTTPS with a short-lived installation token. The token travels only in the
// child's environment (GIT_CONFIG_* → http.<origin>/.extraHeader): not in argv (visible in `ps`),
// not in .git/config, not in the remote URL, and it is redacted from any error text.
import { spawn } from "node:child_process";
import { BranchNameSchema, KilnError, type ErrorCode, parseInput } from "@kiln/shared";

const DEFAULT_GIT_TIMEOUT_MS = 5 * 60_000;
const MAX_CAPTURE = 64 * 1024;

/** Env vars that would make git print headers or pick up someone else's credentials/config. */
const STRIPPED_ENV = /^(GIT_TRACE.*|GIT_CURL_VERBOSE|GIT_ASKPASS|SSH_ASKPASS|GIT_CONFIG_(COUNT|KEY_\d+|VALUE_\d+|PARAMETERS))$/;

function basicHeaderValue(token: string): string {
  return Buffer.from(`x-access-token:${token}`, "utf8").toString("base64");
}

function checkRemoteUrl(remoteUrl: string): URL {
  let url: URL;
  try {
    url = new URL(remoteUrl);
  } catch {
    throw new KilnError("invalid_input", "remote URL is not a valid URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new KilnError("invalid_input", "remote URL must be http(s); the token is sent as an HTTP header");
  }
  if (url.username || url.password) {
    throw new KilnError("invalid_input", "remote URL must not embed credentials");
  }
  return url;
}

/**
 * Environment that makes git send `Authorization: Basic x-access-token:<token>` to `remoteUrl`'s
 * origin only, with credential helpers and prompts off. Also usable for git run inside a sandbox.
 */
export function gitAuthEnv(remoteUrl: string, token: string): Record<string, string> {
  const url = checkRemoteUrl(remoteUrl);
  if (!token || /[\s:]/.test(token)) throw new KilnError("invalid_input", "token is empty or malformed");
  return {
    GIT_TERMINAL_PROMPT: "0",
    GIT_CONFIG_COUNT: "2",
    // Scoped by URL so a redirect to another host never receives the token.
    GIT_CONFIG_KEY_0: `http.${url.origin}/.extraHeader`,
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${basicHeaderValue(token)}`,
    // An empty helper list: never read or store credentials from the user's helpers.
    GIT_CONFIG_KEY_1: "credential.helper",
    GIT_CONFIG_VALUE_1: "",
  };
}

export function redactSecrets(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join("***");
  // Belt and braces: anything that still looks like a GitHub token or a Basic header.
  return out
    .replace(/\bgh[pousr]_[A-Za-z0-9_]{10,}/g, "***")
    .replace(/(authorization:\s*(basic|bearer|token)\s+)\S+/gi, "$1***");
}

function classify(stderr: string): ErrorCode {
  if (/could not read (Username|Password)|Authentication failed|HTTP 401|\b401\b|terminal prompts disabled/i.test(stderr)) {
    return "unauthorized";
  }
  if (/\b403\b|permission to .* denied|write access .* not granted/i.test(stderr)) return "forbidden";
  if (/\b404\b|not found|does not appear to be a git repository/i.test(stderr)) return "not_found";
  if (/\[rejected\]|non-fast-forward|fetch first|stale info/i.test(stderr)) return "conflict";
  if (/Could not resolve host|Connection refused|Failed to connect|timed out|\b50[234]\b/i.test(stderr)) return "unavailable";
  return "internal";
}

export interface GitResult {
  stdout: string;
  stderr: string;
}

export interface GitWithTokenOptions {
  cwd?: string;
  remoteUrl: string;
  token: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** What is being done, for error messages ("push kiln/x to o/r"). */
  action: string;
}

/** Run `git <args>` (no shell) with token auth for `remoteUrl`. Output is returned redacted. */
export async function gitWithToken(args: string[], options: GitWithTokenOptions): Promise<GitResult> {
  const authEnv = gitAuthEnv(options.remoteUrl, options.token);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !STRIPPED_ENV.test(k)) env[k] = v;
  Object.assign(env, authEnv);
  const secrets = [options.token, basicHeaderValue(options.token)];
  const deadline = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;

  return new Promise<GitResult>((resolve, reject) => {
    // Own process group, so a deadline also kills git-remote-http(s) and not just `git`.
    const child = spawn("git", args, { cwd: options.cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    const keep = (buf: string, chunk: Buffer) => (buf + chunk.toString("utf8")).slice(-MAX_CAPTURE);
    child.stdout.on("data", (c: Buffer) => (stdout = keep(stdout, c)));
    child.stderr.on("data", (c: Buffer) => (stderr = keep(stderr, c)));
    let settled = false;
    let abortedBy: "timeout" | "signal" | null = null;
    const onAbort = () => {
      abortedBy = deadline.aborted ? "timeout" : "signal";
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch (error) {
          // ESRCH: the group exited between the check and the kill; anything else is real.
          if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
        }
      }
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    child.on("error", (error: Error) => {
      signal.removeEventListener("abort", onAbort);
      if (settled) return;
      settled = true;
      reject(new KilnError("unavailable", `git could not ${options.action}: ${redactSecrets(error.message, secrets)}`));
    });
    child.on("close", (code, sig) => {
      signal.removeEventListener("abort", onAbort);
      if (settled) return;
      settled = true;
      if (abortedBy) {
        reject(
          new KilnError(
            abortedBy === "timeout" ? "timeout" : "unavailable",
            `git could not ${options.action}: ${abortedBy === "timeout" ? "timed out" : "aborted"}`,
          ),
        );
        return;
      }
      const out = { stdout: redactSecrets(stdout, secrets), stderr: redactSecrets(stderr, secrets) };
      if (code === 0) return resolve(out);
      // `push --porcelain` reports per-ref rejections ("!\t<ref>\t[rejected] …") on stdout.
      const rejected = out.stdout.split("\n").filter((l) => l.startsWith("!"));
      const text = [...rejected, ...out.stderr.trim().split("\n")].filter(Boolean);
      const tail = text.slice(-6).join("\n");
      reject(
        new KilnError(
          classify(text.join("\n")),
          `git could not ${options.action} (exit ${code ?? sig}): ${tail || "no output"}`,
        ),
      );
    });
  });
}

async function gitLocal(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd, stdio: ["ignore", "pipe", "pipe"], signal: AbortSignal.timeout(30_000) });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
    child.on("error", (e) => reject(new KilnError("internal", `git ${args[0]} failed: ${e.message}`)));
    child.on("close", (code) =>
      code === 0 ? resolve(out.trim()) : reject(new KilnError("not_found", `git ${args.join(" ")}: ${err.trim()}`)),
    );
  });
}

export interface PushBranchOptions {
  /** A worktree (or bare repo) that has refs/heads/<branch>. */
  cwd: string;
  remoteUrl: string;
  branch: string;
  token: string;
  /** Overwrite the remote branch (Kiln task branches are owned by the task). */
  force?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Push refs/heads/<branch> to the same branch on `remoteUrl`; returns the pushed commit. */
export async function pushBranch(options: PushBranchOptions): Promise<{ sha: string }> {
  const branch = parseInput(BranchNameSchema, options.branch, "branch");
  gitAuthEnv(options.remoteUrl, options.token); // validate URL and token before touching git
  const sha = await gitLocal(["rev-parse", "--verify", `refs/heads/${branch}^{commit}`], options.cwd);
  const refspec = `${options.force ? "+" : ""}refs/heads/${branch}:refs/heads/${branch}`;
  await gitWithToken(["push", "--porcelain", options.remoteUrl, refspec], {
    cwd: options.cwd,
    remoteUrl: options.remoteUrl,
    token: options.token,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    action: `push ${branch}`,
  });
  return { sha };
}

export interface CloneOptions {
  remoteUrl: string;
  /** Must not exist or be empty. */
  dir: string;
  token: string;
  branch?: string;
  depth?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Clone; the stored origin URL carries no credentials, so later fetch/push need a fresh token. */
export async function cloneRepo(options: CloneOptions): Promise<void> {
  const args = ["clone", "--quiet"];
  if (options.branch !== undefined) args.push("--branch", parseInput(BranchNameSchema, options.branch, "branch"));
  if (options.depth !== undefined) {
    if (!Number.isInteger(options.depth) || options.depth < 1) throw new KilnError("invalid_input", "depth must be a positive integer");
    args.push("--depth", String(options.depth));
  }
  args.push("--", options.remoteUrl, options.dir);
  await gitWithToken(args, {
    remoteUrl: options.remoteUrl,
    token: options.token,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    action: "clone the repository",
  });
}
