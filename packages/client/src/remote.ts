// The remote Kiln client: typed calls over RivetKit, typed errors, and subscriptions that resync from a
// snapshot + sequence numbers on every (re)connect so no event is lost or applied twice.
import {
  AuthMeResponseSchema,
  type ErrorCode,
  type FieldIssue,
  GITHUB_EVENT_NAME,
  type GitHubEvent,
  type GitHubSnapshot,
  KilnError,
  ORG_EVENT_NAME,
  type OrgEvent,
  type OrganizationSnapshot,
  TASK_EVENT_NAME,
  type TaskDetail,
  type TaskEvent,
  applyGitHubEvent,
  applyOrgEvent,
  applyTaskEvent,
  classifySeq,
  errorMessage,
  isErrorCode,
} from "@kiln/shared";
import { checked } from "./checked.ts";
import { createClient } from "rivetkit/client";
import { installFetchCompat } from "./fetch-compat.ts";
import { withEngineRetry } from "./transient.ts";
import type { ConnectionState, KilnClient, Subscription, SubscriptionCallbacks } from "./types.ts";

export interface KilnClientOptions {
  /** URL of the Kiln backend (its HTTP server), e.g. http://127.0.0.1:7741. */
  endpoint: string;
  /** Deadline for one call, so a dead backend surfaces as an error instead of a hang. */
  callTimeoutMs?: number;
  /**
   * Session token for a backend with sign-in on (CLIs, tests). Browsers leave it out: the client then
   * fetches it from `/v1/auth/me` with the http-only session cookie.
   */
  token?: string;
}

interface BackendConfig {
  rivetEndpoint: string;
  poolName: string;
  authEnabled?: boolean;
}

type Call = (...args: unknown[]) => Promise<unknown>;
type ActorHandle = Record<string, Call> & { connect(): ActorConn };
interface ActorConn {
  on(event: string, cb: (payload: unknown) => void): () => void;
  onOpen(cb: () => void): () => void;
  onClose(cb: () => void): () => void;
  onError(cb: (error: unknown) => void): () => void;
  dispose(): Promise<void>;
  [action: string]: unknown;
}
type HandleOptions = { params: { token: string } } | Record<string, never>;
interface RawClient {
  organization: { getOrCreate(key: string[], opts?: HandleOptions): ActorHandle };
  task: { get(key: string[], opts?: HandleOptions): ActorHandle };
  githubState: { getOrCreate(key: string[], opts?: HandleOptions): ActorHandle };
  dispose(): Promise<void>;
}

/** Every handle carries the session token as connection params (sign-in on); the actors verify it. */
function withParams(client: RawClient, opts: HandleOptions): RawClient {
  return {
    organization: { getOrCreate: (key) => client.organization.getOrCreate(key, opts) },
    task: { get: (key) => client.task.get(key, opts) },
    githubState: { getOrCreate: (key) => client.githubState.getOrCreate(key, opts) },
    dispose: () => client.dispose(),
  };
}

/** Rebuild a KilnError from whatever RivetKit threw. */
export function toKilnError(error: unknown): KilnError {
  if (error instanceof KilnError) return error;
  const e = error as { group?: string; code?: string; message?: string; metadata?: { issues?: FieldIssue[] } };
  if (e && typeof e === "object" && typeof e.code === "string") {
    if (isErrorCode(e.code)) return new KilnError(e.code, e.message ?? e.code, e.metadata?.issues ?? []);
    const mapped: Record<string, ErrorCode> = {
      actor_not_found: "not_found",
      not_found: "not_found",
      action_timed_out: "timeout",
      timeout: "timeout",
      actor_ready_timeout: "unavailable",
    };
    const code = mapped[e.code] ?? "internal";
    const message = code === "not_found" ? "not found" : (e.message ?? e.code);
    return new KilnError(code, message);
  }
  const message = errorMessage(error);
  if (/fetch|network|ECONNREFUSED|socket|Failed to/i.test(message)) {
    return new KilnError("unavailable", `Kiln backend unreachable: ${message}`);
  }
  return new KilnError("internal", message);
}

const asCallbacks = <T>(cb: SubscriptionCallbacks<T> | ((value: T) => void)): SubscriptionCallbacks<T> =>
  typeof cb === "function" ? { onChange: cb } : cb;

/** How long one connection attempt may take before a Topic gives up on it and opens a new one. */
const OPEN_DEADLINE_MS = 10_000;

/** One realtime topic: a connection, a folded value, and the listeners sharing it (ref-counted). */
class Topic<Value extends { seq: number }, Event extends { seq: number }> {
  private value: Value | null = null;
  private syncing = false;
  private resyncAgain = false;
  private buffered: Event[] = [];
  private readonly listeners = new Set<SubscriptionCallbacks<Value>>();
  private state: ConnectionState = "connecting";
  private conn: ActorConn | null = null;
  private closed = false;
  private generation = 0;
  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly open: () => Promise<ActorConn>,
    private readonly eventName: string,
    private readonly fetchSnapshot: () => Promise<Value>,
    private readonly apply: (value: Value, event: Event) => Value,
    private readonly onEmpty: () => void,
    /**
     * An error after which waiting is pointless (the task does not exist): delivered, then the topic
     * closes. With it, the snapshot is also fetched at once, since a connection to an actor that does
     * not exist never opens and never errors.
     */
    private readonly fatal?: (error: KilnError) => boolean,
  ) {
    void this.start();
    if (fatal) void this.resync();
  }

  /** Open a connection; every failure or close leads to a fresh connection after a backoff. */
  private async start() {
    const generation = ++this.generation;
    const current = () => generation === this.generation && !this.closed;
    try {
      const conn = await this.open();
      if (!current()) {
        await conn.dispose();
        return;
      }
      this.conn = conn;
      // An attempt can hang without any callback (seen after an engine restart): give each one a deadline.
      const openDeadline = setTimeout(() => {
        if (current() && this.state !== "connected") this.reconnect(true);
      }, OPEN_DEADLINE_MS);
      conn.on(this.eventName, (payload) => {
        if (current()) this.onEvent(payload as Event);
      });
      conn.onOpen(() => {
        clearTimeout(openDeadline);
        if (!current()) return;
        this.attempts = 0;
        this.setState("connected");
        void this.resync();
      });
      conn.onClose(() => {
        if (current()) this.reconnect();
      });
      conn.onError((error) => {
        if (!current()) return;
        this.fail(error);
        this.reconnect();
      });
    } catch (error) {
      if (!current()) return;
      this.fail(error);
      this.reconnect();
    }
  }

  /**
   * RivetKit's own reconnect can give up after "Failed to open connection" (seen across a backend restart),
   * so a Topic replaces the connection itself: 250 ms, doubling, at most 5 s between attempts.
   */
  private reconnect(force = false) {
    if (this.closed || this.reconnectTimer) return;
    if (this.state === "reconnecting" && !force && this.conn === null) return;
    this.setState("reconnecting");
    const delay = Math.min(5000, 250 * 2 ** this.attempts++);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      const old = this.conn;
      this.conn = null;
      this.generation++; // callbacks of the old connection are ignored from here on
      if (old) void old.dispose().catch((error: unknown) => console.error("[kiln] closing a stale connection", error));
      void this.start();
    }, delay);
  }

  private fail(error: unknown) {
    const kilnError = toKilnError(error);
    for (const l of this.listeners) l.onError?.(kilnError);
    if (this.fatal?.(kilnError) && !this.closed) this.shutdown("closed");
  }

  /** Stop for good: no reconnects, the connection closed; a later subscribe starts a fresh topic. */
  private shutdown(state?: ConnectionState) {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.onEmpty();
    if (state) this.setState(state);
    if (this.conn) void this.conn.dispose().catch((error: unknown) => console.error("[kiln] closing subscription", error));
    this.conn = null;
  }

  private setState(state: ConnectionState) {
    this.state = state;
    for (const l of this.listeners) l.onConnectionChange?.(state);
  }

  /** Take a fresh snapshot, then fold the events that arrived meanwhile (those newer than it). */
  private async resync() {
    if (this.closed) return;
    if (this.syncing) {
      // A (re)connect during a snapshot fetch: that snapshot may predate the connection's events.
      this.resyncAgain = true;
      return;
    }
    this.syncing = true;
    this.resyncAgain = false;
    try {
      let value = await this.fetchSnapshot();
      const pending = this.buffered.sort((a, b) => a.seq - b.seq);
      this.buffered = [];
      for (const event of pending) {
        const verdict = classifySeq(value.seq, event.seq);
        if (verdict === "apply") value = this.apply(value, event);
        else if (verdict === "gap") {
          this.syncing = false;
          return void this.resync();
        }
      }
      this.value = value;
      this.syncing = false;
      this.notify();
      if (this.resyncAgain) void this.resync();
    } catch (error) {
      this.syncing = false;
      this.fail(error);
    }
  }

  private onEvent(event: Event) {
    if (this.syncing || !this.value) {
      this.buffered.push(event);
      if (!this.syncing && !this.value) void this.resync();
      return;
    }
    const verdict = classifySeq(this.value.seq, event.seq);
    if (verdict === "duplicate") return;
    if (verdict === "gap") {
      this.buffered.push(event);
      void this.resync();
      return;
    }
    this.value = this.apply(this.value, event);
    this.notify();
  }

  private notify() {
    if (!this.value) return;
    for (const l of this.listeners) l.onChange(this.value);
  }

  add(callbacks: SubscriptionCallbacks<Value>): Subscription {
    this.listeners.add(callbacks);
    callbacks.onConnectionChange?.(this.state);
    if (this.value) callbacks.onChange(this.value);
    return {
      unsubscribe: () => {
        this.listeners.delete(callbacks);
        if (this.listeners.size === 0 && !this.closed) this.shutdown();
      },
    };
  }
}

export function createKilnClient(options: KilnClientOptions): KilnClient {
  installFetchCompat();
  const endpoint = options.endpoint.replace(/\/+$/, "");
  const callTimeoutMs = options.callTimeoutMs ?? 60_000;
  let raw: Promise<RawClient> | null = null;

  /** `GET /v1/auth/me`: the cookie (browsers) or the bearer token identifies the session. */
  const fetchMe = async () => {
    let response: Response;
    try {
      response = await fetch(`${endpoint}/v1/auth/me`, {
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new KilnError("unavailable", `Kiln backend unreachable at ${endpoint}: ${errorMessage(error)}`);
    }
    if (!response.ok) throw new KilnError("unavailable", `GET /v1/auth/me answered HTTP ${response.status}`);
    const parsed = AuthMeResponseSchema.safeParse(await response.json());
    if (!parsed.success) throw new KilnError("internal", "GET /v1/auth/me returned an unexpected body");
    return parsed.data;
  };

  const rawClient = (): Promise<RawClient> => {
    raw ??= (async () => {
      let config: BackendConfig;
      try {
        const response = await fetch(`${endpoint}/v1/config`, { signal: AbortSignal.timeout(10_000) });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        config = (await response.json()) as BackendConfig;
      } catch (error) {
        raw = null; // try again on the next call
        throw new KilnError("unavailable", `Kiln backend unreachable at ${endpoint}: ${errorMessage(error)}`);
      }
      let token = options.token ?? null;
      if (config.authEnabled && token === null) {
        try {
          token = (await fetchMe()).token;
        } catch (error) {
          raw = null; // try again on the next call
          throw error;
        }
      }
      const client = createClient({
        // Kiln's gateway proxy (`/v1/rivet`); a relative answer is taken relative to the Kiln URL.
        endpoint: new URL(config.rivetEndpoint, options.endpoint).toString(),
        poolName: config.poolName,
        devtools: false,
      } as Parameters<typeof createClient>[0]) as unknown as RawClient;
      // Signed out on an auth-on backend: calls fail with `unauthorized` and the UI offers sign-in.
      return withParams(client, config.authEnabled && token ? { params: { token } } : {});
    })();
    return raw;
  };

  const withTimeout = async <T>(what: string, work: Promise<T>): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new KilnError("timeout", `${what} timed out after ${callTimeoutMs} ms`)), callTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };

  const orgKey = (orgId: string) => ["org", orgId];
  const taskKey = (orgId: string, taskId: string) => ["org", orgId, "task", taskId];

  // Organization calls share one WebSocket per org: ~8 ms per call here, against ~117 ms for a stateless
  // HTTP call (RivetKit's HTTP action path has a fixed stall). It reconnects by itself.
  const orgConns = new Map<string, Promise<ActorConn>>();
  const orgConn = (orgId: string): Promise<ActorConn> => {
    let conn = orgConns.get(orgId);
    if (!conn) {
      const opening = rawClient().then((c) => {
        const opened = c.organization.getOrCreate(orgKey(orgId)).connect();
        // A closed or failed connection is replaced on the next call (RivetKit's own retry can give up).
        // An error alone does not dispose it: calls still in flight on it (50 createTasks) would all fail.
        const drop = (dispose: boolean) => {
          if (orgConns.get(orgId) === opening) orgConns.delete(orgId);
          if (dispose) void opened.dispose().catch((error: unknown) => console.error("[kiln] closing a stale connection", error));
        };
        opened.onClose(() => drop(true));
        opened.onError(() => drop(false));
        return opened;
      });
      conn = opening;
      orgConns.set(orgId, conn);
      conn.then(undefined, () => orgConns.delete(orgId));
    }
    return conn;
  };
  const callOrg = async <T>(orgId: string, action: string, ...args: unknown[]): Promise<T> => {
    try {
      const conn = (await orgConn(orgId)) as unknown as Record<string, Call>;
      return (await withTimeout(action, conn[action]!(...args))) as T;
    } catch (error) {
      throw toKilnError(error);
    }
  };
  const callTask = async <T>(orgId: string, taskId: string, action: string, ...args: unknown[]): Promise<T> => {
    try {
      const handle = (await rawClient()).task.get(taskKey(orgId, taskId));
      // A task actor going to sleep (or waking) answers "actor not found" for a moment: retry that.
      return (await withEngineRetry(action, () => withTimeout(action, handle[action]!(...args)))) as T;
    } catch (error) {
      const kilnError = toKilnError(error);
      if (kilnError.code === "not_found" && kilnError.message === "not found") {
        throw new KilnError("not_found", `task ${taskId} not found`);
      }
      throw kilnError;
    }
  };

  const githubKey = (orgId: string) => ["org", orgId, "github"];
  const callGitHub = async <T>(orgId: string, action: string, ...args: unknown[]): Promise<T> => {
    try {
      const handle = (await rawClient()).githubState.getOrCreate(githubKey(orgId));
      return (await withTimeout(action, handle[action]!(...args))) as T;
    } catch (error) {
      throw toKilnError(error);
    }
  };

  const topics = new Map<string, Topic<never, never>>();
  const topic = <V extends { seq: number }, E extends { seq: number }>(key: string, make: () => Topic<V, E>) => {
    let existing = topics.get(key) as unknown as Topic<V, E> | undefined;
    if (!existing) {
      existing = make();
      topics.set(key, existing as unknown as Topic<never, never>);
    }
    return existing;
  };

  return {
    addRepo: async (orgId, input) => callOrg(orgId, "addRepo", checked("addRepo", input)),
    listRepos: (orgId) => callOrg(orgId, "listRepos"),
    createTask: async (orgId, input) => callOrg(orgId, "createTask", checked("createTask", input)),
    listTasks: (orgId) => callOrg(orgId, "listTasks"),
    getOrganization: (orgId) => callOrg(orgId, "getSnapshot"),
    listSandboxes: (orgId) => callOrg(orgId, "listSandboxes"),
    destroyAllSandboxes: async (orgId, input = {}) => callOrg(orgId, "destroyAllSandboxes", checked("destroyAllSandboxes", input)),

    getTask: (orgId, taskId) => callTask(orgId, taskId, "getDetail"),
    sendMessage: async (orgId, input) => callTask(orgId, input.taskId, "sendMessage", checked("sendMessage", input)),
    answerPermission: async (orgId, input) => callTask(orgId, input.taskId, "answerPermission", checked("answerPermission", input)),
    createSession: async (orgId, input) => callTask(orgId, input.taskId, "createSession", checked("createSession", input)),
    stopSession: async (orgId, input) => callTask(orgId, input.taskId, "stopSession", checked("stopSession", input)),
    closeSession: async (orgId, input) => callTask(orgId, input.taskId, "closeSession", checked("closeSession", input)),
    renameSession: async (orgId, input) => callTask(orgId, input.taskId, "renameSession", checked("renameSession", input)),
    retryTask: (orgId, taskId) => callTask(orgId, taskId, "retry", { taskId }),
    archiveTask: async (orgId, input) => callTask(orgId, input.taskId, "archive", checked("archive", input)),
    killTask: (orgId, taskId) => callTask(orgId, taskId, "kill", { taskId }),
    getDiff: (orgId, taskId) => callTask(orgId, taskId, "getChanges"),
    getFileDiff: async (orgId, taskId, path) => callTask(orgId, taskId, "getFileDiff", checked("getFileDiff", { taskId, path })),
    exec: async (orgId, input) => callTask(orgId, input.taskId, "exec", checked("exec", input)),
    runCode: async (orgId, input) => callTask(orgId, input.taskId, "runCode", checked("runCode", input)),
    readFile: async (orgId, input) => callTask(orgId, input.taskId, "readFile", checked("readFile", input)),
    writeFile: async (orgId, input) => callTask(orgId, input.taskId, "writeFile", checked("writeFile", input)),
    readFileRange: async (orgId, input) => callTask(orgId, input.taskId, "readFileRange", checked("readFileRange", input)),
    getTranscriptPage: async (orgId, input) =>
      callTask(orgId, input.taskId, "getTranscriptPage", checked("getTranscriptPage", input)),
    destroySandbox: (orgId, taskId) => callTask(orgId, taskId, "destroySandbox", { taskId }),

    subscribeOrganization(orgId, cb) {
      const key = `org:${orgId}`;
      return topic<OrganizationSnapshot, OrgEvent>(
        key,
        () =>
          new Topic<OrganizationSnapshot, OrgEvent>(
            async () => (await rawClient()).organization.getOrCreate(orgKey(orgId)).connect(),
            ORG_EVENT_NAME,
            () => callOrg<OrganizationSnapshot>(orgId, "getSnapshot"),
            applyOrgEvent,
            () => topics.delete(key),
          ),
      ).add(asCallbacks(cb));
    },

    subscribeTask(orgId, taskId, cb) {
      const key = `task:${orgId}:${taskId}`;
      return topic<TaskDetail, TaskEvent>(
        key,
        () =>
          new Topic<TaskDetail, TaskEvent>(
            async () => (await rawClient()).task.get(taskKey(orgId, taskId)).connect(),
            TASK_EVENT_NAME,
            () => callTask<TaskDetail>(orgId, taskId, "getDetail"),
            applyTaskEvent,
            () => topics.delete(key),
            (error) => error.code === "not_found",
          ),
      ).add(asCallbacks(cb));
    },

    async getSession() {
      const { token: _token, ...session } = await fetchMe();
      return session;
    },
    /** Clears the session cookie; reload the page (or make a new client) to continue signed out. */
    async signOut() {
      let response: Response;
      try {
        response = await fetch(`${endpoint}/v1/auth/logout`, { method: "POST", signal: AbortSignal.timeout(10_000) });
      } catch (error) {
        throw new KilnError("unavailable", `Kiln backend unreachable at ${endpoint}: ${errorMessage(error)}`);
      }
      if (!response.ok) throw new KilnError("internal", `sign-out failed: HTTP ${response.status}`);
    },
    listGitHubRepos: (orgId) => callOrg(orgId, "listGitHubRepos"),
    addGitHubRepo: async (orgId, input) => callOrg(orgId, "addGitHubRepo", checked("addGitHubRepo", input)),
    syncGitHub: (orgId) => callGitHub(orgId, "sync"),
    getGitHub: (orgId) => callGitHub(orgId, "getSnapshot"),
    subscribeGitHub(orgId, cb) {
      const key = `github:${orgId}`;
      return topic<GitHubSnapshot, GitHubEvent>(
        key,
        () =>
          new Topic<GitHubSnapshot, GitHubEvent>(
            async () => (await rawClient()).githubState.getOrCreate(githubKey(orgId)).connect(),
            GITHUB_EVENT_NAME,
            () => callGitHub<GitHubSnapshot>(orgId, "getSnapshot"),
            applyGitHubEvent,
            () => topics.delete(key),
          ),
      ).add(asCallbacks(cb));
    },
    pushBranch: async (orgId, input) => callTask(orgId, input.taskId, "pushBranch", checked("pushBranch", input)),
    openPullRequest: async (orgId, input) => callTask(orgId, input.taskId, "openPullRequest", checked("openPullRequest", input)),

    async dispose() {
      topics.clear();
      for (const conn of orgConns.values()) await (await conn).dispose();
      orgConns.clear();
      if (raw) await (await raw).dispose();
      raw = null;
    },
  };
}
