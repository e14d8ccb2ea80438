// Task actor tables. This actor is the single writer of everything here; rows are not namespaced by
// org/task because each task actor has its own database.
import { integer, primaryKey, sqliteTable, text, uniqueIndex } from "rivetkit/db/drizzle";

/** Singleton (id = 1): the task itself plus the realtime event counter. */
export const task = sqliteTable("task", {
  id: integer("id").primaryKey(),
  orgId: text("org_id").notNull(),
  /** The organization's actor id (called by id; null for tasks created before it was recorded). */
  orgActorId: text("org_actor_id"),
  taskId: text("task_id").notNull(),
  repoId: text("repo_id").notNull(),
  repoName: text("repo_name").notNull(),
  remoteUrl: text("remote_url").notNull(),
  title: text("title").notNull(),
  titleExplicit: integer("title_explicit", { mode: "boolean" }).notNull(),
  prompt: text("prompt").notNull(),
  baseBranch: text("base_branch").notNull(),
  branch: text("branch"),
  agent: text("agent").notNull(),
  provider: text("provider").notNull(),
  status: text("status").notNull(),
  currentStep: text("current_step"),
  error: text("error"),
  pullRequestJson: text("pull_request_json"),
  changesJson: text("changes_json").notNull().default("[]"),
  seq: integer("seq").notNull().default(0),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export const provisionSteps = sqliteTable("provision_steps", {
  step: text("step").primaryKey(),
  position: integer("position").notNull(),
  state: text("state").notNull(),
  attempt: integer("attempt").notNull().default(0),
  startedAt: integer("started_at"),
  finishedAt: integer("finished_at"),
  error: text("error"),
  detail: text("detail"),
});

/** Singleton (id = 1). `daemonToken`/`daemonHeadersJson` are secrets: never sent to clients. */
export const sandbox = sqliteTable("sandbox", {
  id: integer("id").primaryKey(),
  provider: text("provider").notNull(),
  sandboxId: text("sandbox_id").notNull(),
  name: text("name").notNull(),
  workdir: text("workdir").notNull(),
  state: text("state").notNull(),
  labelsJson: text("labels_json").notNull(),
  daemonToken: text("daemon_token").notNull(),
  daemonUrl: text("daemon_url"),
  daemonHeadersJson: text("daemon_headers_json"),
});

export const sessions = sqliteTable("sessions", {
  sessionId: text("session_id").primaryKey(),
  title: text("title").notNull(),
  agent: text("agent").notNull(),
  status: text("status").notNull(),
  error: text("error"),
  closed: integer("closed", { mode: "boolean" }).notNull().default(false),
  /** sandbox-agent SDK SessionRecord (agent session id, connection id), for resume. */
  sdkRecordJson: text("sdk_record_json"),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/**
 * `eventIndex` is Kiln's own per-session order (SDK events and Kiln's synthetic ones such as permission
 * requests share it); `sdkEventId` dedupes SDK events and `rawJson` is what the SDK replays on resume.
 */
export const transcriptEvents = sqliteTable(
  "transcript_events",
  {
    sessionId: text("session_id").notNull(),
    eventIndex: integer("event_index").notNull(),
    sdkEventId: text("sdk_event_id"),
    kind: text("kind").notNull(),
    text: text("text"),
    dataJson: text("data_json"),
    /** The raw SDK SessionEvent (ACP envelope), replayed to the SDK on resume. */
    rawJson: text("raw_json"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.sessionId, t.eventIndex] }),
    uniqueIndex("transcript_sdk_event").on(t.sdkEventId),
  ],
);

export const history = sqliteTable("history", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  kind: text("kind").notNull(),
  message: text("message").notNull(),
  dataJson: text("data_json"),
  createdAt: integer("created_at").notNull(),
});
