// Organization actor tables: registered repos, the task index (the only place branches are reserved)
// and the task-summary projection that task actors push.
import { integer, sqliteTable, text, uniqueIndex } from "rivetkit/db/drizzle";

export const meta = sqliteTable("meta", {
  id: integer("id").primaryKey(),
  seq: integer("seq").notNull().default(0),
});

export const repos = sqliteTable("repos", {
  repoId: text("repo_id").primaryKey(),
  name: text("name").notNull(),
  remoteUrl: text("remote_url").notNull().unique(),
  defaultBranch: text("default_branch").notNull(),
  defaultProvider: text("default_provider").notNull(),
  defaultAgent: text("default_agent").notNull(),
  createdAt: integer("created_at").notNull(),
});

export const taskIndex = sqliteTable(
  "task_index",
  {
    taskId: text("task_id").primaryKey(),
    repoId: text("repo_id").notNull(),
    branch: text("branch"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [uniqueIndex("task_index_repo_branch").on(t.repoId, t.branch)],
);

export const taskSummaries = sqliteTable("task_summaries", {
  taskId: text("task_id").primaryKey(),
  summaryJson: text("summary_json").notNull(),
  updatedAt: integer("updated_at").notNull(),
});
