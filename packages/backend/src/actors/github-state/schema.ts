// github-state actor tables: the single writer of the organization's GitHub data. Rows are not
// namespaced by org: each organization has its own github-state actor and database.
import { integer, primaryKey, sqliteTable, text } from "rivetkit/db/drizzle";

/** Singleton (id = 1): the realtime event counter and the sync status. */
export const meta = sqliteTable("meta", {
  id: integer("id").primaryKey(),
  seq: integer("seq").notNull().default(0),
  syncState: text("sync_state").notNull().default("never"),
  syncPhase: text("sync_phase"),
  syncDone: integer("sync_done").notNull().default(0),
  syncTotal: integer("sync_total").notNull().default(0),
  syncStartedAt: integer("sync_started_at"),
  syncFinishedAt: integer("sync_finished_at"),
  lastSyncedAt: integer("last_synced_at"),
  syncError: text("sync_error"),
});

export const installations = sqliteTable("installations", {
  installationId: integer("installation_id").primaryKey(),
  accountLogin: text("account_login").notNull(),
  accountType: text("account_type").notNull(),
  repositorySelection: text("repository_selection"),
  suspended: integer("suspended", { mode: "boolean" }).notNull().default(false),
  updatedAt: integer("updated_at").notNull(),
});

export const repositories = sqliteTable("repositories", {
  githubId: integer("github_id").primaryKey(),
  installationId: integer("installation_id").notNull(),
  owner: text("owner").notNull(),
  name: text("name").notNull(),
  /** Lower-cased owner/name: the lookup key (GitHub names are case-insensitive). */
  fullNameKey: text("full_name_key").notNull().unique(),
  fullName: text("full_name").notNull(),
  defaultBranch: text("default_branch"),
  private: integer("private", { mode: "boolean" }).notNull().default(true),
  archived: integer("archived", { mode: "boolean" }).notNull().default(false),
  cloneUrl: text("clone_url"),
  htmlUrl: text("html_url"),
  updatedAt: integer("updated_at").notNull(),
});

export const branches = sqliteTable(
  "branches",
  {
    githubId: integer("github_id").notNull(),
    name: text("name").notNull(),
    sha: text("sha").notNull(),
    protected: integer("protected", { mode: "boolean" }).notNull().default(false),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.githubId, t.name] })],
);

export const pullRequests = sqliteTable(
  "pull_requests",
  {
    githubId: integer("github_id").notNull(),
    number: integer("number").notNull(),
    repoFullName: text("repo_full_name").notNull(),
    url: text("url").notNull(),
    title: text("title").notNull(),
    state: text("state").notNull(),
    headRef: text("head_ref").notNull(),
    headSha: text("head_sha").notNull(),
    baseRef: text("base_ref").notNull(),
    checks: text("checks").notNull().default("none"),
    review: text("review").notNull().default("none"),
    taskId: text("task_id"),
    /** The PR state the task was last told about (auto-archive fires once per close). */
    notifiedState: text("notified_state"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.githubId, t.number] })],
);

/** X-GitHub-Delivery ids already applied: redeliveries are acknowledged and ignored. */
export const webhookDeliveries = sqliteTable("webhook_deliveries", {
  deliveryId: text("delivery_id").primaryKey(),
  event: text("event").notNull(),
  receivedAt: integer("received_at").notNull(),
});
