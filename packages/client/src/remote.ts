// The remote Kiln client: typed calls over RivetKit, typed errors, and subscriptions that resync from a
// snapshot + sequence numbers on every (re)connect so no event is lost or applied twice.
import {
  type ErrorCode,
  type FieldIssue,
  KilnError,
  ORG_EVENT_NAME,
  type OrgEvent,
  type OrganizationSnapshot,
  TASK_EVENT_NAME,
  type TaskDetail,
  type TaskEvent,
  applyOrgEvent,
  applyTaskEvent,
  classifySeq,
  errorMessage,
  isErrorCode,
} from "@kiln/shared";
import { createClient } from "rivetkit/client";
import { installFetchCompat } from "./fetch-compat.ts";
import type { ConnectionState, KilnClient, Subscription, SubscriptionCallbacks } from "./types.ts";

export interface KilnClientOptions {
  /** URL of the Kiln backend (its HTTP server), e.g. http://127.0.0.1:7741. */
  endpoint: string;
  /** Deadline for one call, so a dead backend surfaces as an error instead of a hang. */
  callTimeoutMs?: number;
}

interface BackendConfig {
  rivetEndpoint: string;
  poolName: string;
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
interface RawClient {
  organization: { getOrCreate(key: string[]): ActorHandle };
  task: { get(key: string[]): ActorHandle };
  dispose(): Promise<void>;
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

/** One realtime topic: a connection, a folded value, and the listeners sharing it (ref-counted). */
class Topic<Value extends { seq: number }, Event extends { seq: number }> {
  private value: Value | null = null;
  private syncing = false;
  private buffered: Event[] = [];
  private readonly listeners = new Set<SubscriptionCallbacks<Value>>();
  private state: ConnectionState = "connecting";
  private conn: ActorConn | null = null;
  private closed = false;

  constructor(
    private readonly open: () => Promise<ActorConn>,
    private readonly eventName: string,
    private readonly fetchSnapshot: () => Promise<Value>,
    private readonly apply: (value: Value, event: Event) => Value,
    private readonly onEmpty: () => void,
  ) {
    void this.start();
  }

  private async start() {
    try {
      const conn = await this.open();
      if (this.closed) {
        await conn.dispose();
        return;
      }
      this.conn = conn;
      conn.on(this.eventName, (payload) => this.onEvent(payload as Event));
      conn.onOpen(() => {
        this.setState("connected");
        void this.resync();
      });
      conn.onClose(() => {
        if (!this.closed) this.setState("reconnecting");
      });
      conn.onError((error) => this.fail(error));
    } catch (error) {
      this.fail(error);
    }
  }

  private fail(error: unknown) {
    const kilnError = toKilnError(error);
    for (const l of this.listeners) l.onError?.(kilnError);
  }

  private setState(state: ConnectionState) {
    this.state = state;
    for (const l of this.listeners) l.onConnectionChange?.(state);
  }

  /** Take a fresh snapshot, then fold the events that arrived meanwhile (those newer than it). */
  private async resync() {
    if (this.syncing || this.closed) return;
    this.syncing = true;
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
        if (this.listeners.size === 0) {
          this.closed = true;
          this.onEmpty();
          if (this.conn) void this.conn.dispose().catch((error: unknown) => console.error("[kiln] closing subscription", error));
        }
      },
    };
  }
}

export function createKilnClient(options: KilnClientOptions): KilnClient {
  installFetchCompat();
  const endpoint = options.endpoint.replace(/\/+$/, "");
  const callTimeoutMs = options.callTimeoutMs ?? 60_000;
  let raw: Promise<RawClient> | null = null;

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
      return createClient({
        endpoint: config.rivetEndpoint,
        poolName: config.poolName,
        devtools: false,
      } as Parameters<typeof createClient>[0]) as unknown as RawClient;
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

  const callOrg = async <T>(orgId: string, action: string, ...args: unknown[]): Promise<T> => {
    try {
      const handle = (await rawClient()).organization.getOrCreate(orgKey(orgId));
      return (await withTimeout(action, handle[action]!(...args))) as T;
    } catch (error) {
      throw toKilnError(error);
    }
  };
  const callTask = async <T>(orgId: string, taskId: string, action: string, ...args: unknown[]): Promise<T> => {
    try {
      const handle = (await rawClient()).task.get(taskKey(orgId, taskId));
      return (await withTimeout(action, handle[action]!(...args))) as T;
    } catch (error) {
      const kilnError = toKilnError(error);
      if (kilnError.code === "not_found" && kilnError.message === "not found") {
        throw new KilnError("not_found", `task ${taskId} not found`);
      }
      throw kilnError;
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
    addRepo: (orgId, input) => callOrg(orgId, "addRepo", input),
    listRepos: (orgId) => callOrg(orgId, "listRepos"),
    createTask: (orgId, input) => callOrg(orgId, "createTask", input),
    listTasks: (orgId) => callOrg(orgId, "listTasks"),
    getOrganization: (orgId) => callOrg(orgId, "getSnapshot"),
    listSandboxes: (orgId) => callOrg(orgId, "listSandboxes"),

    getTask: (orgId, taskId) => callTask(orgId, taskId, "getDetail"),
    sendMessage: (orgId, input) => callTask(orgId, input.taskId, "sendMessage", input),
    answerPermission: (orgId, input) => callTask(orgId, input.taskId, "answerPermission", input),
    createSession: (orgId, input) => callTask(orgId, input.taskId, "createSession", input),
    stopSession: (orgId, input) => callTask(orgId, input.taskId, "stopSession", input),
    closeSession: (orgId, input) => callTask(orgId, input.taskId, "closeSession", input),
    renameSession: (orgId, input) => callTask(orgId, input.taskId, "renameSession", input),
    retryTask: (orgId, taskId) => callTask(orgId, taskId, "retry", { taskId }),
    archiveTask: (orgId, input) => callTask(orgId, input.taskId, "archive", input),
    killTask: (orgId, taskId) => callTask(orgId, taskId, "kill", { taskId }),
    getDiff: (orgId, taskId) => callTask(orgId, taskId, "getChanges"),
    getFileDiff: (orgId, taskId, path) => callTask(orgId, taskId, "getFileDiff", { taskId, path }),
    exec: (orgId, input) => callTask(orgId, input.taskId, "exec", input),
    runCode: (orgId, input) => callTask(orgId, input.taskId, "runCode", input),
    readFile: (orgId, input) => callTask(orgId, input.taskId, "readFile", input),
    writeFile: (orgId, input) => callTask(orgId, input.taskId, "writeFile", input),

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
          ),
      ).add(asCallbacks(cb));
    },

    async dispose() {
      topics.clear();
      if (raw) await (await raw).dispose();
      raw = null;
    },
  };
}
