// Shared loopback fixtures for the Daytona tests: daemon binary, a git smart-HTTP remote that
// demands Basic auth (so the clone token path is real), subprocess runner for the scripts.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type Daytona, DaytonaNotFoundError } from "@daytonaio/sdk";

const execFileP = promisify(execFile);
const require = createRequire(import.meta.url);

export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

export const SANDBOX_AGENT_BIN = path.join(
  path.dirname(require.resolve("@sandbox-agent/cli-linux-x64/package.json")),
  "bin",
  "sandbox-agent",
);

/** bun for running daytona/*.ts as subprocesses. */
export function bunBinary(): string {
  const bundled = path.join(REPO_ROOT, ".tools", "node_modules", ".bin", "bun");
  if (process.env.BUN_BIN) return process.env.BUN_BIN;
  if (existsSync(bundled)) return bundled;
  return "bun";
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export async function git(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await execFileP("git", args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } });
  return stdout;
}

/** A bare repo with `main` (one commit) and an existing `kiln/existing` branch. */
export async function makeRemoteRepo(): Promise<{ dir: string; bare: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-daytona-git-"));
  const work = path.join(dir, "work");
  const bare = path.join(dir, "repo.git");
  await git(["init", "-q", "-b", "main", work]);
  await writeFile(path.join(work, "README.md"), "# fixture\n");
  await git(["-c", "user.name=t", "-c", "user.email=t@example.com", "add", "."], work);
  await git(["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init"], work);
  await git(["branch", "kiln/existing"], work);
  await git(["clone", "-q", "--bare", work, bare]);
  await git(["config", "http.receivepack", "true"], bare);
  return { dir, bare, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface GitHttpServer {
  url: string;
  /** Authorization headers the server saw (to prove the token arrived as a header). */
  authHeaders: string[];
  close(): Promise<void>;
}

/** `git http-backend` over loopback, requiring `Authorization: Basic base64(user:token)`. */
export async function startGitHttp(projectRoot: string, user: string, token: string): Promise<GitHttpServer> {
  const expected = `Basic ${Buffer.from(`${user}:${token}`).toString("base64")}`;
  const authHeaders: string[] = [];
  const children = new Set<ChildProcess>();
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization ?? "";
    authHeaders.push(auth);
    if (auth !== expected) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="kiln-test"' }).end("auth required");
      return;
    }
    const url = new URL(req.url ?? "/", "http://x");
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        REMOTE_USER: user,
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
        ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    children.add(cgi);
    cgi.on("close", () => children.delete(cgi));
    req.pipe(cgi.stdin);
    // CGI output: headers, blank line, body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const sep = head.indexOf("\r\n\r\n");
      if (sep < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, sep).toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === "status") status = Number.parseInt(v, 10);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(sep + 4));
    });
    cgi.stdout.on("end", () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    authHeaders,
    async close() {
      for (const c of children) c.kill("SIGKILL");
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `bun <script> ...args` from the repo root with a deadline (killed when it passes). */
export function runBunScript(script: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bunBinary(), [script, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? os.tmpdir(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} timed out after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A free loopback port (bind port 0, read it, release it). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The get-or-create step of daytona/github-actions/create-sandbox.yml, done with the real SDK: find the
 * sandbox by name, else create it from the snapshot. Returns what the workflow's callback reports.
 */
export async function workflowGetOrCreate(
  sdk: Daytona,
  inputs: Record<string, string>,
): Promise<{ sandboxId: string; status: "created" | "failed"; error?: string }> {
  try {
    const name = inputs.sandbox_name ?? "";
    const existing = await sdk.get(name).then(
      (s) => s,
      (e: unknown) => {
        if (e instanceof DaytonaNotFoundError) return null; // 404: create it (the workflow's lookup step)
        throw e;
      },
    );
    const sandbox =
      existing ??
      (await sdk.create(
        {
          name,
          snapshot: inputs.snapshot ?? "",
          labels: JSON.parse(inputs.labels ?? "{}") as Record<string, string>,
          autoStopInterval: Number(inputs.auto_stop_minutes ?? "0"),
        },
        { timeout: 30 },
      ));
    return { sandboxId: sandbox.id, status: "created" };
  } catch (e) {
    return { sandboxId: "", status: "failed", error: e instanceof Error ? e.message : String(e) };
  }
}
