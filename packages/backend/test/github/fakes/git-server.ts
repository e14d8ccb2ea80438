// A real git smart-HTTP server on loopback: bare repos served by `git http-backend` (CGI), with
// GitHub-style Basic auth (`x-access-token:<installation token>`) checked by a callback, usually
// the fake GitHub's token table. Clone/push through it are real git behaviour.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export type GitAccess = "read" | "write";
/** ok → serve; unauthenticated → 401; not_found → 404 (GitHub hides repos a token can't see); forbidden → 403. */
export type GitAuthDecision = "ok" | "unauthenticated" | "not_found" | "forbidden";

export interface GitServerOptions {
  authorize(token: string | null, repoFullName: string, access: GitAccess): GitAuthDecision;
  /** Concurrent `git http-backend` processes (2 shared cores). */
  maxConcurrent?: number;
}

export interface GitRequestRecord {
  method: string;
  repo: string;
  service: string;
  access: GitAccess;
  status: number;
  /** Whether the request carried credentials (never the credentials themselves). */
  authenticated: boolean;
}

/** Async git (never execFileSync: the server answering it may live on this event loop). */
export async function git(args: string[], cwd?: string, env?: Record<string, string>): Promise<string> {
  const { stdout } = await execFileAsync("git", args, {
    cwd,
    env: { ...process.env, GIT_TERMINAL_PROMPT: "0", ...env },
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout.trim();
}

export const TEST_GIT_IDENTITY = {
  GIT_AUTHOR_NAME: "Kiln Test",
  GIT_AUTHOR_EMAIL: "kiln-test@example.invalid",
  GIT_COMMITTER_NAME: "Kiln Test",
  GIT_COMMITTER_EMAIL: "kiln-test@example.invalid",
};

export class GitServer {
  readonly requests: GitRequestRecord[] = [];
  private server!: http.Server;
  private readonly children = new Set<ChildProcess>();
  private running = 0;
  private readonly queue: Array<() => void> = [];
  private readonly maxConcurrent: number;
  url = "";

  private constructor(
    readonly root: string,
    private readonly options: GitServerOptions,
  ) {
    this.maxConcurrent = options.maxConcurrent ?? 3;
  }

  static async start(options: GitServerOptions): Promise<GitServer> {
    const root = await mkdtemp(path.join(os.tmpdir(), "kiln-git-server-"));
    const s = new GitServer(root, options);
    s.server = http.createServer((req, res) => {
      s.handle(req, res).catch((error: unknown) => {
        // Surface server bugs to the client as 500 (and to the test through git's error).
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`git-server error: ${error instanceof Error ? error.message : String(error)}`);
      });
    });
    await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", resolve));
    s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  cloneUrl(fullName: string): string {
    return `${this.url}/${fullName}.git`;
  }

  bareDir(fullName: string): string {
    return path.join(this.root, `${fullName}.git`);
  }

  /** A bare repo with one commit on `defaultBranch` (plus `files`). */
  async createRepo(fullName: string, options: { defaultBranch?: string; files?: Record<string, string> } = {}) {
    const branch = options.defaultBranch ?? "main";
    const bare = this.bareDir(fullName);
    await mkdir(path.dirname(bare), { recursive: true });
    await git(["init", "--bare", "--quiet", "--initial-branch", branch, bare]);
    const work = await mkdtemp(path.join(os.tmpdir(), "kiln-git-seed-"));
    try {
      await git(["init", "--quiet", "--initial-branch", branch], work);
      const files = options.files ?? { "README.md": `# ${fullName}\n` };
      for (const [name, content] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(work, name)), { recursive: true });
        await writeFile(path.join(work, name), content);
      }
      await git(["add", "-A"], work);
      await git(["commit", "--quiet", "-m", "initial commit"], work, TEST_GIT_IDENTITY);
      await git(["push", "--quiet", bare, `HEAD:refs/heads/${branch}`], work);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  async listBranches(fullName: string): Promise<Array<{ name: string; sha: string }>> {
    const out = await git(["for-each-ref", "--format=%(refname:short)%09%(objectname)", "refs/heads"], this.bareDir(fullName));
    return out
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [name = "", sha = ""] = line.split("\t");
        return { name, sha };
      });
  }

  /** Commit sha of a ref in the bare repo, or null. */
  async resolve(fullName: string, ref: string): Promise<string | null> {
    try {
      return await git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], this.bareDir(fullName));
    } catch (error) {
      // rev-parse --verify --quiet exits 1 for an unknown ref: that is the answer, not a failure.
      if ((error as { code?: unknown }).code === 1) return null;
      throw error;
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const m = /^\/([^/]+\/[^/]+)\.git(\/.*)$/.exec(url.pathname);
    if (!m || !m[1] || !m[2]) {
      res.writeHead(404).end("not a repository path");
      return;
    }
    const repo = m[1];
    const rest = m[2];
    const service = url.searchParams.get("service") ?? rest.replace(/^\//, "");
    const access: GitAccess = service === "git-receive-pack" ? "write" : "read";
    const token = parseBasicToken(req.headers.authorization);
    const decision = this.options.authorize(token, repo, access);
    const record = (status: number) =>
      this.requests.push({ method: req.method ?? "", repo, service, access, status, authenticated: token !== null });
    if (decision !== "ok") {
      const status = decision === "unauthenticated" ? 401 : decision === "forbidden" ? 403 : 404;
      record(status);
      req.resume();
      res.writeHead(status, {
        "content-type": "text/plain",
        ...(status === 401 ? { "www-authenticate": 'Basic realm="kiln-fake-github"' } : {}),
      });
      res.end(status === 404 ? "Repository not found.\n" : status === 403 ? "Write access not granted.\n" : "Invalid username or token.\n");
      return;
    }
    await this.acquire();
    try {
      const status = await this.cgi(req, res, repo, rest, url.search.slice(1));
      record(status);
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.running < this.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(() => (this.running++, resolve())));
  }

  private release(): void {
    this.running--;
    this.queue.shift()?.();
  }

  private cgi(req: http.IncomingMessage, res: http.ServerResponse, repo: string, rest: string, query: string): Promise<number> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: this.root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: `/${repo}.git${rest}`,
      REQUEST_METHOD: req.method ?? "GET",
      QUERY_STRING: query,
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_ADDR: "127.0.0.1",
      // http-backend enables receive-pack only for an authenticated user.
      REMOTE_USER: "x-access-token",
    };
    if (req.headers["content-length"]) env.CONTENT_LENGTH = req.headers["content-length"];
    if (req.headers["content-encoding"]) env.HTTP_CONTENT_ENCODING = req.headers["content-encoding"];
    const proto = req.headers["git-protocol"];
    if (typeof proto === "string") env.GIT_PROTOCOL = proto;

    return new Promise<number>((resolve, reject) => {
      const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
      this.children.add(child);
      let head = Buffer.alloc(0);
      let status = 200;
      let headersDone = false;
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4096)));
      child.stdout.on("data", (chunk: Buffer) => {
        if (headersDone) {
          res.write(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        let sep = head.indexOf("\r\n\r\n");
        let sepLen = 4;
        if (sep === -1) {
          sep = head.indexOf("\n\n");
          sepLen = 2;
        }
        if (sep === -1) return;
        headersDone = true;
        const headers: Record<string, string> = {};
        for (const line of head.subarray(0, sep).toString("latin1").split(/\r?\n/)) {
          const i = line.indexOf(":");
          if (i <= 0) continue;
          const name = line.slice(0, i).trim();
          const value = line.slice(i + 1).trim();
          if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
          else headers[name] = value;
        }
        res.writeHead(status, headers);
        const body = head.subarray(sep + sepLen);
        if (body.length) res.write(body);
      });
      child.on("error", (error) => {
        this.children.delete(child);
        reject(error);
      });
      child.on("close", (code) => {
        this.children.delete(child);
        if (!headersDone) {
          reject(new Error(`git http-backend exited ${code} without headers: ${stderr.trim()}`));
          return;
        }
        res.end();
        resolve(status);
      });
      req.pipe(child.stdin);
      child.stdin.on("error", (error: NodeJS.ErrnoException) => {
        // http-backend may exit before reading a rejected body; EPIPE then is expected.
        if (error.code !== "EPIPE") reject(error);
      });
    });
  }

  async close(): Promise<void> {
    for (const child of this.children) if (child.pid !== undefined && child.exitCode === null) child.kill("SIGKILL");
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((e) => (e ? reject(e) : resolve())));
    await rm(this.root, { recursive: true, force: true });
  }
}

function parseBasicToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!m || !m[1]) return null;
  const decoded = Buffer.from(m[1], "base64").toString("utf8");
  const i = decoded.indexOf(":");
  if (i < 0) return null;
  // GitHub accepts any username with a token password; Kiln sends x-access-token.
  return decoded.slice(i + 1) || null;
}
