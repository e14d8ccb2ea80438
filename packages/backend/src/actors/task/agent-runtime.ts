// One task's live link to its sandbox-agent daemon: the SDK connection, a persist driver writing into
// the task's SQLite, agent turns with deadlines, and permission requests. Lives in actor vars: after a
// restart it reconnects and the SDK resumes sessions from the persisted records.
import { type AgentId, KilnError, type PermissionReply, errorMessage } from "@kiln/shared";
import { eq, and, asc, isNotNull } from "drizzle-orm";
import {
  SandboxAgent,
  type Session,
  type SessionEvent,
  type SessionPermissionRequest,
  type SessionPersistDriver,
  type SessionRecord as SdkSessionRecord,
} from "sandbox-agent";
import { normalizeEnvelope } from "../../agents/normalize.ts";
import { withDeadline } from "../../errors.ts";
import { checkHealth } from "../../providers/local/daemon.ts";
import type { AgentEndpoint } from "../../providers/types.ts";
import { sleep } from "../../util/process.ts";
import * as schema from "./schema.ts";
import { type TaskCtx, appendTranscript, refreshTask, updateSession } from "./store.ts";

export interface ActorHandleCtx extends TaskCtx {
  keepAwake<T>(promise: Promise<T>): Promise<T>;
  waitUntil(promise: Promise<unknown>): void;
}

export interface AgentRuntimeDeps {
  /** Long-lived actor context (captured on wake), valid outside actions and steps. */
  ctx: ActorHandleCtx;
  endpoint(): Promise<AgentEndpoint & { cwd: string }>;
  promptTimeoutMs: number;
  connectTimeoutMs: number;
  /** After every turn: refresh the changed-files list and task status. */
  onTurnSettled(sessionId: string): Promise<void>;
  logError(message: string, error: unknown): void;
}

/** SessionPersistDriver over the task's own tables; `onInserted` sees every new SDK event. */
function persistDriver(ctx: TaskCtx, onInserted: (sessionId: string) => void = () => undefined): SessionPersistDriver {
  const records = async () =>
    (await ctx.db.select().from(schema.sessions).where(isNotNull(schema.sessions.sdkRecordJson))).map(
      (r) => JSON.parse(r.sdkRecordJson as string) as SdkSessionRecord,
    );
  return {
    async getSession(id) {
      const rows = await ctx.db.select().from(schema.sessions).where(eq(schema.sessions.sessionId, id));
      const json = rows[0]?.sdkRecordJson;
      return json ? (JSON.parse(json) as SdkSessionRecord) : undefined;
    },
    async listSessions(request) {
      const all = await records();
      const offset = Number(request?.cursor ?? 0);
      const limit = request?.limit ?? 100;
      const items = all.slice(offset, offset + limit);
      return { items, nextCursor: offset + limit < all.length ? String(offset + limit) : undefined };
    },
    async updateSession(record) {
      await ctx.db
        .update(schema.sessions)
        .set({ sdkRecordJson: JSON.stringify(record) })
        .where(eq(schema.sessions.sessionId, record.id));
    },
    async listEvents(request) {
      const rows = await ctx.db
        .select({ raw: schema.transcriptEvents.rawJson })
        .from(schema.transcriptEvents)
        .where(and(eq(schema.transcriptEvents.sessionId, request.sessionId), isNotNull(schema.transcriptEvents.rawJson)))
        .orderBy(asc(schema.transcriptEvents.eventIndex));
      const all = rows.map((r) => JSON.parse(r.raw as string) as SessionEvent);
      const offset = Number(request.cursor ?? 0);
      const limit = request.limit ?? 1000;
      return {
        items: all.slice(offset, offset + limit),
        nextCursor: offset + limit < all.length ? String(offset + limit) : undefined,
      };
    },
    async insertEvent(sessionId, event) {
      const item = normalizeEnvelope(event.sender, event.payload);
      await appendTranscript(ctx, {
        sessionId,
        kind: item?.kind ?? "other",
        text: item?.text ?? null,
        data: item === null ? { hidden: true } : item.data,
        sdkEvent: { id: event.id, raw: event, createdAt: event.createdAt },
      });
      onInserted(sessionId);
    },
  };
}

export class AgentRuntime {
  private sdk: SandboxAgent | null = null;
  private connecting: Promise<SandboxAgent> | null = null;
  private readonly sessions = new Map<string, Session>();
  /** Permission ids the live SDK connection can still answer. */
  private readonly pendingPermissions = new Map<string, string>();
  private readonly runningTurns = new Set<string>();
  /** Sessions stopped by the user: a cancelled turn settling afterwards must not revive them. */
  private readonly stoppedSessions = new Set<string>();
  /** When the last SDK event of each session was persisted (to know when a turn's output has landed). */
  private readonly lastEventAt = new Map<string, number>();

  constructor(private readonly deps: AgentRuntimeDeps) {}

  private async connection(): Promise<SandboxAgent> {
    if (this.sdk) return this.sdk;
    if (!this.connecting) {
      this.connecting = (async () => {
        const endpoint = await this.deps.endpoint();
        const sdk = await withDeadline("connecting to sandbox-agent", this.deps.connectTimeoutMs, (signal) =>
          SandboxAgent.connect({
            baseUrl: endpoint.baseUrl,
            token: endpoint.token,
            headers: endpoint.headers,
            persist: persistDriver(this.deps.ctx, (sessionId) => this.lastEventAt.set(sessionId, Date.now())),
            signal,
          }),
        );
        this.sdk = sdk;
        return sdk;
      })();
      this.connecting.then(
        () => (this.connecting = null),
        () => (this.connecting = null),
      );
    }
    return this.connecting;
  }

  /** Drop the connection (agent died, daemon restarted); the next use reconnects and resumes. */
  async reset(): Promise<void> {
    const sdk = this.sdk;
    this.sdk = null;
    this.sessions.clear();
    this.pendingPermissions.clear();
    // dispose() waits ~2 s per live ACP server (a DELETE the daemon never answers); don't block on it.
    if (sdk) void sdk.dispose().catch((error: unknown) => this.deps.logError("disposing sandbox-agent client", error));
  }

  private attach(session: Session): Session {
    session.onPermissionRequest((request) => {
      void this.onPermissionRequest(session.id, request).catch((error: unknown) =>
        this.deps.logError("recording permission request", error),
      );
    });
    this.sessions.set(session.id, session);
    return session;
  }

  /** Open (or resume) a session with the given Kiln session id. Idempotent. */
  async openSession(sessionId: string, agent: AgentId): Promise<void> {
    if (this.sessions.has(sessionId)) return;
    const sdk = await this.connection();
    const { cwd } = await this.deps.endpoint();
    const known = await persistDriver(this.deps.ctx).getSession(sessionId);
    const session = await withDeadline("starting the agent session", this.deps.connectTimeoutMs, () =>
      known ? sdk.resumeSession(sessionId) : sdk.createSession({ id: sessionId, agent, cwd }),
    );
    this.attach(session);
  }

  isTurnRunning(sessionId: string): boolean {
    return this.runningTurns.has(sessionId);
  }

  /** Send a prompt and return at once; the turn runs in the background with a deadline. */
  async startTurn(sessionId: string, agent: AgentId, text: string): Promise<void> {
    if (this.runningTurns.has(sessionId)) throw new KilnError("not_ready", "the agent is still working on the last message");
    this.runningTurns.add(sessionId);
    await updateSession(this.deps.ctx, sessionId, { status: "running", error: null });
    await refreshTask(this.deps.ctx);
    void this.deps.ctx.keepAwake(this.runTurn(sessionId, agent, text));
  }

  private async runTurn(sessionId: string, agent: AgentId, text: string): Promise<void> {
    try {
      await this.openSession(sessionId, agent);
      const session = this.sessions.get(sessionId);
      if (!session) throw new KilnError("internal", "session was not opened");
      const turn = session.prompt([{ type: "text", text }]);
      const result = await withDeadline("the agent turn", this.deps.promptTimeoutMs, (signal) =>
        Promise.race([turn, this.watchDaemon(signal)]),
      );
      await this.settleEvents(sessionId);
      const stopped = this.stoppedSessions.has(sessionId) || result.stopReason === "cancelled";
      await updateSession(this.deps.ctx, sessionId, { status: stopped ? "stopped" : "ready" });
    } catch (error) {
      if (this.stoppedSessions.has(sessionId)) return; // the user stopped it; the abort is expected
      const message = errorMessage(error);
      await appendTranscript(this.deps.ctx, { sessionId, kind: "error", text: message, data: null });
      await updateSession(this.deps.ctx, sessionId, { status: "error", error: message });
      if (!(error instanceof KilnError) || error.code !== "invalid_input") await this.reset();
    } finally {
      this.runningTurns.delete(sessionId);
      try {
        await this.deps.onTurnSettled(sessionId);
      } catch (error) {
        this.deps.logError("refreshing task after turn", error);
      }
    }
  }

  /**
   * prompt() resolves from the POST response, but the turn's last updates arrive over SSE and can be
   * persisted after it. Wait until the session's events go quiet (bounded) before calling the turn done.
   */
  private async settleEvents(sessionId: string, quietMs = 250, maxMs = 3000): Promise<void> {
    const deadline = Date.now() + maxMs;
    while (Date.now() < deadline) {
      if (Date.now() - (this.lastEventAt.get(sessionId) ?? 0) >= quietMs) return;
      await sleep(50);
    }
  }

  /**
   * Rejects when the daemon stops answering during a turn. The SDK never settles prompt() when the
   * agent or daemon dies (see reference notes), so a turn must not rely on it alone.
   */
  private async watchDaemon(signal: AbortSignal): Promise<never> {
    const endpoint = await this.deps.endpoint();
    let failures = 0;
    for (;;) {
      await sleep(2000, signal);
      if (await checkHealth(endpoint.baseUrl, endpoint.token, 2000)) failures = 0;
      else if (++failures >= 3) throw new KilnError("unavailable", "the sandbox-agent daemon stopped responding");
    }
  }

  private async onPermissionRequest(sessionId: string, request: SessionPermissionRequest): Promise<void> {
    this.pendingPermissions.set(request.id, sessionId);
    // The SDK persists the envelopes that preceded this request (thought, plan, tool call) asynchronously;
    // let those land first so the request gets the next transcript index after them.
    await sleep(150);
    await appendTranscript(this.deps.ctx, {
      sessionId,
      kind: "permission_request",
      text: request.toolCall?.title ?? "The agent asks for permission",
      data: {
        permissionId: request.id,
        options: request.options,
        availableReplies: request.availableReplies,
        toolCallId: request.toolCall?.toolCallId ?? null,
      },
    });
    await updateSession(this.deps.ctx, sessionId, { status: "needs_input" }, ["running"]);
    await refreshTask(this.deps.ctx);
  }

  async answerPermission(sessionId: string, permissionId: string, reply: PermissionReply): Promise<void> {
    if (this.pendingPermissions.get(permissionId) !== sessionId || !this.sdk) {
      throw new KilnError("not_found", "this permission request is no longer pending (answered, or the agent restarted)");
    }
    await this.sdk.respondPermission(permissionId, reply);
    this.pendingPermissions.delete(permissionId);
    await appendTranscript(this.deps.ctx, {
      sessionId,
      kind: "permission_reply",
      text: reply === "reject" ? "Rejected" : "Allowed",
      data: { permissionId, reply },
    });
    // Back to running only if still waiting: the turn may already have ended (and set `ready`) meanwhile.
    await updateSession(this.deps.ctx, sessionId, { status: "running" }, ["needs_input"]);
    await refreshTask(this.deps.ctx);
  }

  /** Cancel the running turn and end the session (the SDK only cancels through destroySession). */
  async stopSession(sessionId: string): Promise<void> {
    this.stoppedSessions.add(sessionId);
    const sdk = this.sdk;
    if (sdk && this.sessions.has(sessionId)) {
      await withDeadline("stopping the session", 10_000, () => sdk.destroySession(sessionId));
      this.sessions.delete(sessionId);
    }
    for (const [permissionId, owner] of this.pendingPermissions) {
      if (owner === sessionId) this.pendingPermissions.delete(permissionId);
    }
  }

  async dispose(): Promise<void> {
    await this.reset();
  }
}
