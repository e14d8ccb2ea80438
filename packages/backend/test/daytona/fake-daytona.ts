// A loopback fake of the Daytona control plane, toolbox and preview proxy, for driving the REAL
// @daytonaio/sdk in tests. Shapes follow the SDK 0.218 traffic captured in
// shared/reference/daytona-github.md and @daytona/api-client's models.
//
// "Sandboxes" are per-sandbox temp dirs on this machine: the toolbox really runs commands there
// (argv split like the real daemon, no shell), sessions are real `sh` processes fed
// `{ CMD; } > log 2>&1; echo $? > exit` exactly like the daemon does, and preview links proxy to
// whatever listens on the sandbox's own loopback address (127.0.0.N) — typically the real
// sandbox-agent binary, reached through a `sandbox-agent` shim on PATH that binds that address.
// Not isolation: run only test commands. Everything is killed and removed on close().
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { access, chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { installScriptedAgentLauncher } from "../../src/agents/scripted-agent.ts";

export interface RecordedRequest {
  method: string;
  /** Route template, e.g. `/api/sandbox/{id}/start`. */
  route: string;
  query: string[];
  body: string[];
  status: number;
}

export interface FakeDaytonaOptions {
  apiKey: string;
  /** Snapshots that already exist and are active. */
  snapshots?: string[];
  /** Executable sandbox-agent binary the `sandbox-agent` shim runs. */
  sandboxAgentBin?: string;
  /** Delay of each state transition (creating→started, stopping→stopped, …). */
  transitionMs?: number;
  /** Delay between fake build-log lines. */
  buildStepMs?: number;
  /** Minimum build duration: the SDK polls snapshot state once a second and only streams logs
   *  when it sees `building`, so a build must outlast a poll (real ones take minutes). */
  minBuildMs?: number;
}

type SandboxStateName = string;

interface FakeSession {
  id: string;
  shell: ChildProcess;
  dir: string;
  commands: Map<string, { id: string; command: string }>;
}

interface FakeSandbox {
  id: string;
  name: string;
  snapshot: string | undefined;
  env: Record<string, string>;
  labels: Record<string, string>;
  public: boolean;
  target: string;
  state: SandboxStateName;
  errorReason: string | undefined;
  autoStopInterval: number;
  autoArchiveInterval: number;
  autoDeleteInterval: number;
  buildInfo: { dockerfileContent: string; contextHashes: string[] } | undefined;
  createdAt: string;
  updatedAt: string;
  root: string;
  home: string;
  xdg: string;
  ip: string;
  previewToken: string;
  sessions: Map<string, FakeSession>;
  procs: Set<ChildProcess>;
  proxies: Map<number, { server: http.Server; url: string }>;
  build: FakeBuild | undefined;
  timers: Set<ReturnType<typeof setTimeout>>;
}

interface FakeSnapshot {
  id: string;
  name: string;
  state: string;
  imageName: string | undefined;
  buildInfo: { dockerfileContent: string; contextHashes: string[] } | undefined;
  cpu: number;
  mem: number;
  disk: number;
  regionIds: string[];
  errorReason: string | null;
  createdAt: string;
  updatedAt: string;
  build: FakeBuild | undefined;
}

/** Build log lines, streamed to followers until done. */
class FakeBuild {
  lines: string[] = [];
  done = false;
  private listeners = new Set<() => void>();
  push(line: string) {
    this.lines.push(line);
    for (const l of this.listeners) l();
  }
  finish() {
    this.done = true;
    for (const l of this.listeners) l();
  }
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    readonly source = "DAYTONA_API",
  ) {
    super(message);
  }
}

/** The daemon's argv splitter: quotes group, no escapes, no shell (apps/daemon …/execute.go). */
export function parseCommand(command: string): string[] {
  const args: string[] = [];
  let current = "";
  let has = false;
  let quote: string | null = null;
  for (const ch of command) {
    if (ch === '"' || ch === "'") {
      if (!quote) quote = ch;
      else if (quote === ch) quote = null;
      else current += ch;
      has = true;
    } else if (ch === " " && !quote) {
      if (current.length > 0) args.push(current);
      current = "";
      has = false;
    } else {
      current += ch;
      has = true;
    }
  }
  if (has && current.length > 0) args.push(current);
  return args;
}

function killTree(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL"); // detached → own process group: takes the daemon and its agents too
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

function bodyKeys(body: unknown): string[] {
  if (!body || typeof body !== "object" || Array.isArray(body)) return [];
  return Object.keys(body as object).sort();
}

interface Route {
  method: string;
  template: string;
  regex: RegExp;
  names: string[];
  handler: (ctx: RouteCtx) => Promise<void> | void;
}

interface RouteCtx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  params: Record<string, string>;
  url: URL;
  raw: Buffer;
  json: () => Record<string, unknown>;
  record: RecordedRequest;
}

export class FakeDaytona {
  readonly requests: RecordedRequest[] = [];
  readonly sandboxes = new Map<string, FakeSandbox>();
  readonly snapshots = new Map<string, FakeSnapshot>();
  /** Raw JSON request bodies (tests assert secrets never travel as command text / JSON). */
  readonly jsonBodies: string[] = [];
  /** Non-fatal process errors seen by the fake (diagnostics for failing tests). */
  readonly errors: string[] = [];
  /** Make the next N `POST /api/sandbox` fail with this status (hybrid fallback tests). */
  failCreates: { remaining: number; status: number; message: string } | null = null;
  /** Extra time new sandboxes spend in `creating` (slow-create / abort tests). */
  createDelayMs = 0;
  private server!: http.Server;
  private routes: Route[] = [];
  private root = "";
  private shimDir = "";
  private ipBase = 2 + Math.floor(Math.random() * 200);
  private ipCounter = 0;
  private closed = false;
  origin = "";

  private constructor(private readonly options: FakeDaytonaOptions) {}

  static async start(options: FakeDaytonaOptions): Promise<FakeDaytona> {
    const fake = new FakeDaytona(options);
    await fake.init();
    return fake;
  }

  get apiUrl(): string {
    return `${this.origin}/api`;
  }

  /** Requests whose route matches (`POST /api/sandbox`). */
  count(methodAndRoute: string): number {
    return this.requests.filter((r) => `${r.method} ${r.route}` === methodAndRoute).length;
  }

  byName(name: string): FakeSandbox | undefined {
    for (const s of this.sandboxes.values()) if (s.name === name) return s;
    return undefined;
  }

  /** What Daytona's auto-stop (or an operator) does: stop a sandbox behind the client's back. */
  async forceStop(name: string): Promise<void> {
    const s = this.byName(name);
    if (!s) throw new Error(`no fake sandbox ${name}`);
    await this.haltProcesses(s);
    s.state = "stopped";
  }

  private async init(): Promise<void> {
    this.root = await mkdtemp(path.join(os.tmpdir(), "kiln-fake-daytona-"));
    this.shimDir = path.join(this.root, "bin");
    await mkdir(this.shimDir, { recursive: true });
    if (this.options.sandboxAgentBin) await this.installShim(this.options.sandboxAgentBin);
    for (const name of this.options.snapshots ?? []) {
      const snap = this.newSnapshot(name, undefined, `${name}-image`);
      snap.state = "active";
    }
    this.defineRoutes();
    this.server = http.createServer((req, res) => {
      this.handle(req, res).then(undefined, (error: unknown) => {
        // Last resort: a bug in the fake must fail the request loudly, not hang it.
        if (!res.headersSent) this.sendError(res, new HttpError(500, `fake-daytona bug: ${String(error)}`));
        else res.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async installShim(realBin: string): Promise<void> {
    let bin = realBin;
    try {
      await access(bin, constants.X_OK);
    } catch {
      // bun installs the package without running its chmod postinstall; use an executable copy.
      bin = path.join(this.root, "sandbox-agent-real");
      await copyFile(realBin, bin);
      await chmod(bin, 0o755);
    }
    const shim = [
      "#!/bin/sh",
      "# fake-daytona: the real daemon, bound to this sandbox's own loopback address",
      'prev=""',
      "for arg do",
      "  shift",
      '  orig="$arg"',
      '  case "$prev" in --host|-H) arg="$DAYTONA_FAKE_SANDBOX_IP" ;; esac',
      '  set -- "$@" "$arg"',
      '  prev="$orig"',
      "done",
      `exec '${bin}' "$@"`,
      "",
    ].join("\n");
    await writeFile(path.join(this.shimDir, "sandbox-agent"), shim, { mode: 0o755 });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sandboxes.values()) await this.haltProcesses(s);
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((e) => (e ? reject(e) : resolve())));
    await rm(this.root, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- plumbing

  private route(method: string, template: string, handler: Route["handler"]): void {
    const names: string[] = [];
    const regex = new RegExp(
      `^${template.replace(/\{(\w+)\}/g, (_, n: string) => {
        names.push(n);
        return "([^/]+)";
      })}$`,
    );
    this.routes.push({ method, template, regex, names, handler });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.origin);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    // socket.io is not implemented: the SDK falls back to polling (tests pass useDeprecatedPolling).
    if (url.pathname.startsWith("/api/socket.io")) return this.send(res, 404, { message: "no socket.io in fake" });
    const record: RecordedRequest = { method: req.method ?? "GET", route: url.pathname, query: [...new Set(url.searchParams.keys())].sort(), body: [], status: 0 };
    this.requests.push(record);
    res.on("finish", () => (record.status = res.statusCode));
    if (req.headers.authorization !== `Bearer ${this.options.apiKey}`) {
      return this.sendError(res, new HttpError(401, "Invalid credentials", "UNAUTHORIZED"));
    }
    for (const r of this.routes) {
      if (r.method !== req.method) continue;
      const m = r.regex.exec(url.pathname);
      if (!m) continue;
      record.route = r.template;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1] ?? "")));
      let parsed: Record<string, unknown> | undefined;
      const json = () => {
        if (parsed) return parsed;
        parsed = raw.length ? (JSON.parse(raw.toString("utf8")) as Record<string, unknown>) : {};
        return parsed;
      };
      const ctype = req.headers["content-type"] ?? "";
      if (ctype.includes("application/json") && raw.length) {
        record.body = bodyKeys(json());
        this.jsonBodies.push(raw.toString("utf8"));
      }
      try {
        await r.handler({ req, res, params, url, raw, json, record });
      } catch (error) {
        if (error instanceof HttpError) return this.sendError(res, error);
        throw error;
      }
      return;
    }
    this.sendError(res, new HttpError(404, `Cannot ${req.method} ${url.pathname}`));
  }

  private send(res: http.ServerResponse, status: number, body?: unknown): void {
    if (body === undefined) {
      res.writeHead(status).end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
  }

  private sendError(res: http.ServerResponse, error: HttpError): void {
    this.send(res, error.status, {
      statusCode: error.status,
      message: error.message,
      ...(error.code ? { code: error.code } : {}),
      source: error.source,
      path: "",
      timestamp: new Date().toISOString(),
    });
  }

  private later(s: FakeSandbox, ms: number, fn: () => void | Promise<void>): void {
    const t = setTimeout(() => {
      s.timers.delete(t);
      if (this.closed) return;
      Promise.resolve(fn()).then(undefined, (error: unknown) => {
        s.state = "error";
        s.errorReason = `fake transition failed: ${String(error)}`;
      });
    }, ms);
    s.timers.add(t);
  }

  private get transition(): number {
    return this.options.transitionMs ?? 40;
  }

  // ---------------------------------------------------------------- model

  private dto(s: FakeSandbox) {
    return {
      id: s.id,
      organizationId: "fake-org",
      name: s.name,
      snapshot: s.snapshot,
      user: "daytona",
      env: s.env,
      labels: s.labels,
      public: s.public,
      networkBlockAll: false,
      target: s.target,
      cpu: 1,
      gpu: 0,
      memory: 1,
      disk: 3,
      state: s.state,
      desiredState: s.state === "stopped" ? "stopped" : s.state === "destroyed" ? "destroyed" : "started",
      errorReason: s.errorReason,
      recoverable: false,
      autoStopInterval: s.autoStopInterval,
      autoArchiveInterval: s.autoArchiveInterval,
      autoDeleteInterval: s.autoDeleteInterval,
      buildInfo: s.buildInfo,
      createdAt: s.createdAt,
      updatedAt: s.updatedAt,
      toolboxProxyUrl: `${this.origin}/toolbox`,
    };
  }

  private snapDto(s: FakeSnapshot) {
    return {
      id: s.id,
      organizationId: "fake-org",
      general: false,
      name: s.name,
      imageName: s.imageName,
      state: s.state,
      size: s.state === "active" ? 1.2 : null,
      entrypoint: null,
      cpu: s.cpu,
      gpu: 0,
      mem: s.mem,
      disk: s.disk,
      errorReason: s.errorReason,
      createdAt: s.createdAt,
      updatedAt: s.updatedAt,
      lastUsedAt: null,
      buildInfo: s.buildInfo,
      regionIds: s.regionIds,
      sourceSandboxId: null,
    };
  }

  private find(idOrName: string): FakeSandbox {
    const s = this.sandboxes.get(idOrName) ?? this.byName(idOrName);
    if (!s) throw new HttpError(404, `Sandbox with ID or name ${idOrName} not found`, "NOT_FOUND");
    return s;
  }

  private findSnapshot(idOrName: string): FakeSnapshot {
    const s = this.snapshots.get(idOrName) ?? [...this.snapshots.values()].find((x) => x.name === idOrName);
    if (!s) throw new HttpError(404, `Snapshot ${idOrName} not found`, "NOT_FOUND");
    return s;
  }

  private newSnapshot(
    name: string,
    buildInfo: FakeSnapshot["buildInfo"],
    imageName: string | undefined,
    resources: { cpu?: number; memory?: number; disk?: number; regionId?: string } = {},
  ): FakeSnapshot {
    const now = new Date().toISOString();
    const snap: FakeSnapshot = {
      id: randomUUID(),
      name,
      state: "pending",
      imageName,
      buildInfo,
      cpu: resources.cpu ?? 1,
      mem: resources.memory ?? 1,
      disk: resources.disk ?? 3,
      regionIds: resources.regionId ? [resources.regionId] : ["us"],
      errorReason: null,
      createdAt: now,
      updatedAt: now,
      build: undefined,
    };
    this.snapshots.set(snap.id, snap);
    return snap;
  }

  /** Simulate an image build: one log line per Dockerfile instruction; FAKE_BUILD_FAIL fails it. */
  private runBuild(dockerfile: string, step: (fn: () => void, ms: number) => void, done: (ok: boolean, reason?: string) => void): FakeBuild {
    const build = new FakeBuild();
    const instructions = dockerfile.split("\n").filter((l) => l.trim().length > 0);
    const stepMs = this.options.buildStepMs ?? 30;
    const finishAt = Date.now() + (this.options.minBuildMs ?? 1800);
    let i = 0;
    const next = () => {
      if (i === instructions.length && Date.now() < finishAt) return step(next, finishAt - Date.now());
      if (i < instructions.length) {
        const line = instructions[i] ?? "";
        build.push(`Step ${i + 1}/${instructions.length} : ${line.length > 120 ? `${line.slice(0, 117)}...` : line}`);
        i++;
        if (line.includes("FAKE_BUILD_FAIL")) {
          build.push("The command returned a non-zero code: 1");
          build.finish();
          return done(false, "build step failed: The command returned a non-zero code: 1");
        }
        return step(next, stepMs);
      }
      build.push(`Successfully built ${randomBytes(6).toString("hex")}`);
      build.finish();
      done(true);
    };
    step(next, stepMs);
    return build;
  }

  private async provision(s: FakeSandbox): Promise<void> {
    await mkdir(s.home, { recursive: true });
    await mkdir(s.xdg, { recursive: true });
    // What the Kiln snapshot bakes in: the scripted agent as the `mock` launcher.
    await installScriptedAgentLauncher(s.xdg);
  }

  private sandboxEnv(s: FakeSandbox): Record<string, string> {
    return {
      PATH: `${this.shimDir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      HOME: s.home,
      USER: "daytona",
      LANG: "C.UTF-8",
      TMPDIR: os.tmpdir(),
      XDG_DATA_HOME: s.xdg,
      SANDBOX_AGENT_REQUIRE_PREINSTALL: "1",
      DAYTONA_SANDBOX_ID: s.id,
      DAYTONA_FAKE_SANDBOX_IP: s.ip,
      ...s.env,
    };
  }

  private async haltProcesses(s: FakeSandbox): Promise<void> {
    for (const t of s.timers) clearTimeout(t);
    s.timers.clear();
    for (const sess of s.sessions.values()) killTree(sess.shell);
    s.sessions.clear();
    for (const p of s.procs) killTree(p);
    s.procs.clear();
    for (const { server } of s.proxies.values()) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    s.proxies.clear();
  }

  private startedOrThrow(s: FakeSandbox): void {
    if (s.state !== "started") {
      throw new HttpError(400, `failed to reach sandbox toolbox (state ${s.state}): Is the Sandbox started?`, "BAD_REQUEST", "DAYTONA_PROXY");
    }
  }

  // ---------------------------------------------------------------- routes

  private defineRoutes(): void {
    // -- sandboxes
    this.route("POST", "/api/sandbox", async ({ res, json }) => {
      const body = json();
      if (this.failCreates && this.failCreates.remaining > 0) {
        this.failCreates.remaining--;
        throw new HttpError(this.failCreates.status, this.failCreates.message);
      }
      const name = typeof body.name === "string" && body.name ? body.name : `sandbox-${randomBytes(4).toString("hex")}`;
      if (this.byName(name)) throw new HttpError(409, `Sandbox with name ${name} already exists`, "CONFLICT");
      const buildInfo = body.buildInfo as FakeSandbox["buildInfo"];
      const snapshotName = typeof body.snapshot === "string" ? body.snapshot : undefined;
      if (snapshotName) {
        const snap = [...this.snapshots.values()].find((x) => x.name === snapshotName);
        if (!snap) throw new HttpError(404, `Snapshot ${snapshotName} not found`, "NOT_FOUND");
        if (snap.state !== "active") throw new HttpError(400, `Snapshot ${snapshotName} is ${snap.state}`);
      }
      if (buildInfo?.contextHashes?.length) throw new HttpError(400, "fake-daytona has no object storage for build context");
      const id = randomUUID();
      const root = path.join(this.root, `sb-${id.slice(0, 8)}`);
      const now = new Date().toISOString();
      const s: FakeSandbox = {
        id,
        name,
        snapshot: snapshotName,
        env: (body.env as Record<string, string>) ?? {},
        labels: (body.labels as Record<string, string>) ?? {},
        public: body.public === true,
        target: (body.target as string) ?? "us",
        state: buildInfo ? "pending_build" : "creating",
        errorReason: undefined,
        autoStopInterval: typeof body.autoStopInterval === "number" ? body.autoStopInterval : 15,
        autoArchiveInterval: typeof body.autoArchiveInterval === "number" ? body.autoArchiveInterval : 10080,
        autoDeleteInterval: typeof body.autoDeleteInterval === "number" ? body.autoDeleteInterval : -1,
        buildInfo,
        createdAt: now,
        updatedAt: now,
        root,
        home: path.join(root, "home", "daytona"),
        xdg: path.join(root, "xdg"),
        ip: `127.0.0.${2 + ((this.ipBase + this.ipCounter++) % 250)}`,
        previewToken: randomBytes(12).toString("hex"),
        sessions: new Map(),
        procs: new Set(),
        proxies: new Map(),
        build: undefined,
        timers: new Set(),
      };
      this.sandboxes.set(id, s);
      await this.provision(s);
      if (buildInfo) {
        this.later(s, this.transition * 3, () => {
          s.state = "building_snapshot";
          s.build = this.runBuild(
            buildInfo.dockerfileContent,
            (fn, ms) => this.later(s, ms, fn),
            (ok, reason) => {
              if (!ok) {
                s.state = "build_failed";
                s.errorReason = reason;
                return;
              }
              s.state = "starting";
              this.later(s, this.transition, () => {
          s.state = "started";
        });
            },
          );
        });
      } else {
        this.later(s, this.transition + this.createDelayMs, () => {
          s.state = "started";
        });
      }
      this.send(res, 200, this.dto(s));
    });

    this.route("GET", "/api/sandbox", ({ res, url }) => {
      const labelsParam = url.searchParams.get("labels");
      const want = labelsParam ? (JSON.parse(labelsParam) as Record<string, string>) : {};
      const items = [...this.sandboxes.values()]
        .filter((s) => s.state !== "destroyed")
        .filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v))
        .map((s) => this.dto(s));
      this.send(res, 200, { items, nextCursor: null });
    });

    this.route("GET", "/api/sandbox/{id}", ({ res, params }) => this.send(res, 200, this.dto(this.find(params.id ?? ""))));

    this.route("DELETE", "/api/sandbox/{id}", async ({ res, params }) => {
      const s = this.find(params.id ?? "");
      await this.haltProcesses(s);
      s.state = "destroying";
      // Like the real API: returns while still destroying; gone (404) a little later.
      this.later(s, this.transition, () => {
        s.state = "destroyed";
        this.later(s, this.transition, async () => {
          this.sandboxes.delete(s.id);
          await rm(s.root, { recursive: true, force: true });
        });
      });
      this.send(res, 200, this.dto(s));
    });

    this.route("POST", "/api/sandbox/{id}/start", ({ res, params }) => {
      const s = this.find(params.id ?? "");
      if (s.state === "stopped" || s.state === "archived") {
        s.state = "starting";
        s.previewToken = randomBytes(12).toString("hex"); // rotates on restart, like the real proxy
        this.later(s, this.transition, () => {
          s.state = "started";
        });
      } else if (s.state !== "started" && s.state !== "starting") {
        throw new HttpError(400, `Sandbox ${s.name} cannot be started from state ${s.state}`);
      }
      this.send(res, 200, this.dto(s));
    });

    this.route("POST", "/api/sandbox/{id}/stop", async ({ res, params }) => {
      const s = this.find(params.id ?? "");
      if (s.state === "started") {
        await this.haltProcesses(s);
        s.state = "stopping";
        this.later(s, this.transition, () => {
          s.state = "stopped";
        });
      }
      this.send(res, 200, this.dto(s));
    });

    this.route("POST", "/api/sandbox/{id}/autostop/{interval}", ({ res, params }) => {
      const s = this.find(params.id ?? "");
      s.autoStopInterval = Number(params.interval);
      this.send(res, 200);
    });

    this.route("POST", "/api/sandbox/{id}/last-activity", ({ res, params }) => {
      this.find(params.id ?? "").updatedAt = new Date().toISOString();
      this.send(res, 201);
    });

    this.route("PUT", "/api/sandbox/{id}/labels", ({ res, params, json }) => {
      const s = this.find(params.id ?? "");
      s.labels = (json().labels as Record<string, string>) ?? {};
      this.send(res, 200, { labels: s.labels });
    });

    this.route("GET", "/api/sandbox/{id}/toolbox-proxy-url", ({ res, params }) => {
      this.find(params.id ?? "");
      this.send(res, 200, { url: `${this.origin}/toolbox` });
    });

    this.route("GET", "/api/sandbox/{id}/ports/{port}/preview-url", async ({ res, params }) => {
      const s = this.find(params.id ?? "");
      const port = Number(params.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new HttpError(400, "invalid port");
      const proxy = await this.previewProxy(s, port);
      this.send(res, 200, { sandboxId: s.id, url: proxy.url, token: s.previewToken });
    });

    this.route("GET", "/api/sandbox/{id}/build-logs-url", ({ res, params }) => {
      const s = this.find(params.id ?? "");
      this.send(res, 200, { url: `${this.origin}/build-logs/sandbox/${s.id}` });
    });

    // -- snapshots
    this.route("POST", "/api/snapshots", ({ res, json }) => {
      const body = json();
      const name = String(body.name ?? "");
      if (!name) throw new HttpError(400, "name is required");
      if ([...this.snapshots.values()].some((x) => x.name === name)) {
        throw new HttpError(409, `Snapshot with name ${name} already exists`, "CONFLICT");
      }
      const buildInfo = body.buildInfo as FakeSnapshot["buildInfo"];
      if (buildInfo?.contextHashes?.length) throw new HttpError(400, "fake-daytona has no object storage for build context");
      const snap = this.newSnapshot(name, buildInfo, body.imageName as string | undefined, {
        cpu: body.cpu as number | undefined,
        memory: body.memory as number | undefined,
        disk: body.disk as number | undefined,
        regionId: body.regionId as string | undefined,
      });
      const timers = new Set<ReturnType<typeof setTimeout>>();
      const step = (fn: () => void, ms: number) => {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!this.closed) fn();
        }, ms);
        timers.add(t);
      };
      step(() => {
        snap.state = buildInfo ? "building" : "pulling";
        snap.build = this.runBuild(buildInfo?.dockerfileContent ?? `FROM ${snap.imageName ?? "unknown"}`, step, (ok, reason) => {
          snap.state = ok ? "active" : "build_failed";
          snap.errorReason = ok ? null : (reason ?? "failed");
          snap.updatedAt = new Date().toISOString();
        });
      }, this.transition * 5);
      this.send(res, 200, this.snapDto(snap));
    });

    this.route("GET", "/api/snapshots", ({ res, url }) => {
      const page = Number(url.searchParams.get("page") ?? 1);
      const limit = Number(url.searchParams.get("limit") ?? 100);
      const all = [...this.snapshots.values()];
      const items = all.slice((page - 1) * limit, page * limit).map((s) => this.snapDto(s));
      this.send(res, 200, { items, total: all.length, page, totalPages: Math.max(1, Math.ceil(all.length / limit)) });
    });

    this.route("GET", "/api/snapshots/{id}", ({ res, params }) => this.send(res, 200, this.snapDto(this.findSnapshot(params.id ?? ""))));

    this.route("DELETE", "/api/snapshots/{id}", ({ res, params }) => {
      const snap = this.findSnapshot(params.id ?? "");
      this.snapshots.delete(snap.id);
      this.send(res, 200);
    });

    this.route("GET", "/api/snapshots/{id}/build-logs-url", ({ res, params }) => {
      const snap = this.findSnapshot(params.id ?? "");
      this.send(res, 200, { url: `${this.origin}/build-logs/snapshot/${snap.id}` });
    });

    this.route("GET", "/build-logs/{kind}/{id}", ({ res, params }) => {
      const build =
        params.kind === "snapshot" ? this.findSnapshot(params.id ?? "").build : this.find(params.id ?? "").build;
      if (!build) throw new HttpError(404, "no build logs yet");
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "transfer-encoding": "chunked" });
      let sent = 0;
      const flush = () => {
        while (sent < build.lines.length) res.write(`${build.lines[sent++]}\n`);
        if (build.done) {
          unsubscribe();
          res.end();
        }
      };
      const unsubscribe = build.subscribe(flush);
      res.on("close", unsubscribe);
      flush();
    });

    this.route("GET", "/api/object-storage/push-access", () => {
      throw new HttpError(501, "fake-daytona has no object storage (Image.addLocalFile is not supported)");
    });

    // -- toolbox (SDK base URL: toolboxProxyUrl + "/" + sandboxId)
    const tb = (method: string, sub: string, handler: (ctx: RouteCtx, s: FakeSandbox) => Promise<void> | void) =>
      this.route(method, `/toolbox/{id}${sub}`, async (ctx) => {
        const s = this.find(ctx.params.id ?? "");
        this.startedOrThrow(s);
        await handler(ctx, s);
      });

    tb("GET", "/user-home-dir", ({ res }, s) => this.send(res, 200, { dir: s.home }));
    tb("GET", "/work-dir", ({ res }, s) => this.send(res, 200, { dir: s.home }));

    tb("POST", "/process/execute", async ({ res, json }, s) => {
      const body = json();
      const argv = parseCommand(String(body.command ?? ""));
      if (argv.length === 0) throw new HttpError(400, "empty command", "BAD_REQUEST", "DAYTONA_DAEMON");
      const cwd = typeof body.cwd === "string" && body.cwd ? path.resolve(s.home, body.cwd) : s.home;
      const timeoutSec = typeof body.timeout === "number" && body.timeout > 0 ? body.timeout : 0;
      // `envs` is ignored on purpose: the daemon source we mirror does not apply it either.
      const result = await this.runArgv(s, argv, cwd, timeoutSec);
      if (result === "timeout") {
        throw new HttpError(
          408,
          `Command execution timed out after ${timeoutSec} seconds. The timeout can be increased by adjusting the timeout parameter in the request.`,
          "REQUEST_TIMEOUT",
          "DAYTONA_DAEMON",
        );
      }
      this.send(res, 200, result);
    });

    tb("POST", "/process/session", async ({ res, json }, s) => {
      const sessionId = String(json().sessionId ?? "");
      if (!sessionId) throw new HttpError(400, "sessionId is required", "BAD_REQUEST", "DAYTONA_DAEMON");
      if (s.sessions.has(sessionId)) throw new HttpError(409, `session ${sessionId} already exists`, "CONFLICT", "DAYTONA_DAEMON");
      const dir = path.join(s.root, "daemon-sessions", sessionId);
      await mkdir(dir, { recursive: true });
      const shell = spawn("sh", [], { cwd: s.home, env: this.sandboxEnv(s), detached: true, stdio: ["pipe", "ignore", "ignore"] });
      shell.on("error", (error) => {
        this.errors.push(`session ${sessionId}: ${error.message}`);
        s.sessions.delete(sessionId);
      });
      // EPIPE when writing to a killed session: recorded for diagnosis, the session is gone anyway.
      shell.stdin?.on("error", (error) => this.errors.push(`session ${sessionId} stdin: ${error.message}`));
      s.sessions.set(sessionId, { id: sessionId, shell, dir, commands: new Map() });
      this.send(res, 201);
    });

    tb("GET", "/process/session", ({ res }, s) => {
      this.send(
        res,
        200,
        [...s.sessions.values()].map((x) => ({ sessionId: x.id, commands: [...x.commands.values()] })),
      );
    });

    const session = (s: FakeSandbox, id: string) => {
      const sess = s.sessions.get(id);
      if (!sess) throw new HttpError(404, `session ${id} not found`, "NOT_FOUND", "DAYTONA_DAEMON");
      return sess;
    };

    tb("DELETE", "/process/session/{sessionId}", ({ res, params }, s) => {
      const sess = session(s, params.sessionId ?? "");
      killTree(sess.shell);
      s.sessions.delete(sess.id);
      this.send(res, 204);
    });

    const readIfExists = async (file: string): Promise<string | undefined> => {
      try {
        return await readFile(file, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    };
    const exitCodeOf = async (sess: FakeSession, cmdId: string): Promise<number | undefined> => {
      const text = await readIfExists(path.join(sess.dir, cmdId, "exit_code")); // absent while running
      const n = text === undefined ? Number.NaN : Number.parseInt(text.trim(), 10);
      return Number.isNaN(n) ? undefined : n;
    };
    const outputOf = async (sess: FakeSession, cmdId: string): Promise<string> =>
      (await readIfExists(path.join(sess.dir, cmdId, "output"))) ?? "";

    tb("POST", "/process/session/{sessionId}/exec", async ({ res, params, json }, s) => {
      const sess = session(s, params.sessionId ?? "");
      const body = json();
      const command = String(body.command ?? "");
      if (!command.trim()) throw new HttpError(400, "command cannot be empty", "BAD_REQUEST", "DAYTONA_DAEMON");
      const cmdId = randomUUID();
      const dir = path.join(sess.dir, cmdId);
      await mkdir(dir, { recursive: true });
      sess.commands.set(cmdId, { id: cmdId, command });
      const out = path.join(dir, "output");
      const exit = path.join(dir, "exit_code");
      sess.shell.stdin?.write(`{ ${command}\n} > '${out}' 2>&1 ; echo "$?" > '${exit}'\n`);
      if (body.runAsync === true || body.async === true) return this.send(res, 202, { cmdId });
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const code = await exitCodeOf(sess, cmdId);
        if (code !== undefined) {
          const output = await outputOf(sess, cmdId);
          return this.send(res, 200, { cmdId, output, exitCode: code });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new HttpError(408, "fake-daytona: synchronous session command exceeded 120s", "REQUEST_TIMEOUT", "DAYTONA_DAEMON");
    });

    tb("GET", "/process/session/{sessionId}", ({ res, params }, s) => {
      const sess = session(s, params.sessionId ?? "");
      this.send(res, 200, { sessionId: sess.id, commands: [...sess.commands.values()] });
    });

    tb("GET", "/process/session/{sessionId}/command/{cmdId}", async ({ res, params }, s) => {
      const sess = session(s, params.sessionId ?? "");
      const cmd = sess.commands.get(params.cmdId ?? "");
      if (!cmd) throw new HttpError(404, "command not found", "NOT_FOUND", "DAYTONA_DAEMON");
      const exitCode = await exitCodeOf(sess, cmd.id);
      this.send(res, 200, { id: cmd.id, command: cmd.command, ...(exitCode === undefined ? {} : { exitCode }) });
    });

    tb("GET", "/process/session/{sessionId}/command/{cmdId}/logs", async ({ res, params }, s) => {
      const sess = session(s, params.sessionId ?? "");
      if (!sess.commands.has(params.cmdId ?? "")) throw new HttpError(404, "command not found", "NOT_FOUND", "DAYTONA_DAEMON");
      const output = await outputOf(sess, params.cmdId ?? "");
      this.send(res, 200, { output, stdout: output, stderr: "" });
    });

    tb("POST", "/files/bulk-upload", async ({ req, res, raw, record }, s) => {
      const form = await new Response(new Uint8Array(raw), { headers: { "content-type": req.headers["content-type"] ?? "" } }).formData();
      record.body = [...new Set([...form.keys()].map((k) => k.replace(/\[\d+\]/, "[i]")))].sort();
      for (let i = 0; form.has(`files[${i}].path`); i++) {
        const dest = String(form.get(`files[${i}].path`));
        const file = form.get(`files[${i}].file`);
        if (!file || typeof file === "string") throw new HttpError(400, `files[${i}].file missing`, "BAD_REQUEST", "DAYTONA_DAEMON");
        const target = path.resolve(s.home, dest);
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, Buffer.from(await file.arrayBuffer()));
      }
      this.send(res, 200);
    });

    tb("POST", "/files/bulk-download", async ({ res, json }, s) => {
      const paths = (json().paths as string[]) ?? [];
      const boundary = `fake-${randomBytes(8).toString("hex")}`;
      const parts: Buffer[] = [];
      for (const p of paths) {
        const target = path.resolve(s.home, p);
        let data: Buffer | null = null;
        try {
          if ((await stat(target)).isFile()) data = await readFile(target);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
          data = null; // missing: reported as an error part below, like the daemon
        }
        const head = (name: string, type: string, len: number) =>
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${p}"\r\nContent-Type: ${type}\r\nContent-Length: ${len}\r\n\r\n`,
          );
        if (data) {
          parts.push(head("file", "application/octet-stream", data.length), data, Buffer.from("\r\n"));
        } else {
          const err = Buffer.from(
            JSON.stringify({ message: `file not found: ${p}`, statusCode: 404, code: "FILE_NOT_FOUND", source: "DAYTONA_DAEMON" }),
          );
          parts.push(head("error", "application/json", err.length), err, Buffer.from("\r\n"));
        }
      }
      parts.push(Buffer.from(`--${boundary}--\r\n`));
      const body = Buffer.concat(parts);
      res.writeHead(200, { "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": body.length }).end(body);
    });

    tb("GET", "/files", async ({ res, url }, s) => {
      const dir = path.resolve(s.home, url.searchParams.get("path") ?? ".");
      const entries = await readdir(dir, { withFileTypes: true });
      this.send(
        res,
        200,
        entries.map((e) => ({ name: e.name, isDir: e.isDirectory(), size: 0, mode: "", permissions: "", owner: "", group: "", modTime: "" })),
      );
    });
  }

  /** Run argv in the sandbox dir; stdout+stderr merged, like the daemon. */
  private runArgv(
    s: FakeSandbox,
    argv: string[],
    cwd: string,
    timeoutSec: number,
  ): Promise<{ exitCode: number; result: string } | "timeout"> {
    return new Promise((resolve) => {
      const [cmd = "", ...args] = argv;
      const child = spawn(cmd, args, { cwd, env: this.sandboxEnv(s), detached: true, stdio: ["ignore", "pipe", "pipe"] });
      s.procs.add(child);
      const chunks: Buffer[] = [];
      child.stdout?.on("data", (c: Buffer) => chunks.push(c));
      child.stderr?.on("data", (c: Buffer) => chunks.push(c));
      let timedOut = false;
      const timer = timeoutSec
        ? setTimeout(() => {
            timedOut = true;
            killTree(child);
          }, timeoutSec * 1000)
        : undefined;
      child.on("error", (error) => {
        clearTimeout(timer);
        s.procs.delete(child);
        resolve({ exitCode: -1, result: error.message });
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        s.procs.delete(child);
        if (timedOut) return resolve("timeout");
        resolve({ exitCode: code ?? (signal ? 128 + 9 : -1), result: Buffer.concat(chunks).toString("utf8") });
      });
    });
  }

  /** One loopback listener per (sandbox, port): checks the preview token, forwards to 127.0.0.N:port. */
  private async previewProxy(s: FakeSandbox, port: number): Promise<{ url: string }> {
    const existing = s.proxies.get(port);
    if (existing) return existing;
    const server = http.createServer((req, res) => {
      this.requests.push({ method: req.method ?? "GET", route: "PREVIEW {path}", query: [], body: [], status: 0 });
      if (s.state !== "started") {
        res.writeHead(502, { "content-type": "text/plain" }).end(`sandbox ${s.name} is ${s.state}`);
        return;
      }
      if (!s.public && req.headers["x-daytona-preview-token"] !== s.previewToken) {
        res.writeHead(401, { "content-type": "text/plain" }).end("missing or invalid x-daytona-preview-token");
        return;
      }
      const headers = { ...req.headers };
      delete headers["x-daytona-preview-token"];
      headers.host = `${s.ip}:${port}`;
      const upstream = http.request({ host: s.ip, port, method: req.method, path: req.url, headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on("error", (error) => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end(`no service on port ${port}: ${error.message}`);
        else res.destroy(error);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const entry = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    s.proxies.set(port, entry);
    return entry;
  }
}
