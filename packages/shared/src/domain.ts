// Records, statuses and steps that cross the client/backend boundary.
// Every shape is a zod schema; TypeScript types are inferred from it.
import { z } from "zod";

export const DEFAULT_ORG_ID = "default";

/** Ids are opaque, URL-safe strings. */
const idSchema = (what: string) =>
  z
    .string({ error: `${what} is required` })
    .min(1, `${what} is required`)
    .max(128, `${what} is too long`)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, `${what} may only contain letters, digits, '.', '_' and '-'`);

export const OrgIdSchema = idSchema("orgId");
export const TaskIdSchema = idSchema("taskId");
export const RepoIdSchema = idSchema("repoId");
export const SessionIdSchema = idSchema("sessionId");

export const AGENT_IDS = ["mock", "claude", "codex", "opencode", "amp"] as const;
export const AgentIdSchema = z.enum(AGENT_IDS);
export type AgentId = z.infer<typeof AgentIdSchema>;

export const PROVIDER_IDS = ["local", "daytona"] as const;
export const ProviderIdSchema = z.enum(PROVIDER_IDS);
export type ProviderId = z.infer<typeof ProviderIdSchema>;

export const PROVISION_STEPS = ["ensure-name", "create-sandbox", "ensure-agent", "create-session"] as const;
export const ProvisionStepNameSchema = z.enum(PROVISION_STEPS);
export type ProvisionStepName = z.infer<typeof ProvisionStepNameSchema>;

export const StepStateSchema = z.enum(["pending", "running", "done", "failed"]);
export type StepState = z.infer<typeof StepStateSchema>;

/**
 * queued → provisioning → running ⇄ idle / needs_input → archived | killed, or error (retryable).
 */
export const TASK_STATUSES = [
  "queued",
  "provisioning",
  "running",
  "idle",
  "needs_input",
  "error",
  "archived",
  "killed",
] as const;
export const TaskStatusSchema = z.enum(TASK_STATUSES);
export type TaskStatus = z.infer<typeof TaskStatusSchema>;
export const TERMINAL_TASK_STATUSES: readonly TaskStatus[] = ["archived", "killed"];

export const SessionStatusSchema = z.enum(["creating", "ready", "running", "needs_input", "stopped", "error"]);
export type SessionStatus = z.infer<typeof SessionStatusSchema>;

// Git refs: conservative subset of `git check-ref-format`.
export const BranchNameSchema = z
  .string()
  .min(1, "branch is required")
  .max(200, "branch is too long")
  .refine(
    (b) =>
      /^[A-Za-z0-9._/-]+$/.test(b) &&
      !b.startsWith("/") &&
      !b.endsWith("/") &&
      !b.endsWith(".lock") &&
      !b.startsWith("-") &&
      !b.includes("..") &&
      !b.includes("//") &&
      !b.endsWith("."),
    { message: "not a valid git branch name" },
  );

export const RepoRecordSchema = z.object({
  repoId: RepoIdSchema,
  name: z.string(),
  remoteUrl: z.string(),
  defaultBranch: z.string(),
  defaultProvider: ProviderIdSchema,
  defaultAgent: AgentIdSchema,
  createdAt: z.number(),
});
export type RepoRecord = z.infer<typeof RepoRecordSchema>;

export const ProvisionStepRecordSchema = z.object({
  step: ProvisionStepNameSchema,
  state: StepStateSchema,
  attempt: z.number().int(),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  error: z.string().nullable(),
  /** Last progress line (e.g. build log) while running. */
  detail: z.string().nullable(),
});
export type ProvisionStepRecord = z.infer<typeof ProvisionStepRecordSchema>;

export const PullRequestInfoSchema = z.object({
  number: z.number().int().positive(),
  url: z.string(),
  state: z.enum(["open", "draft", "merged", "closed"]),
  checks: z.enum(["pending", "success", "failure", "none"]).default("none"),
  review: z.enum(["approved", "changes_requested", "commented", "none"]).default("none"),
});
export type PullRequestInfo = z.infer<typeof PullRequestInfoSchema>;

export const TaskRecordSchema = z.object({
  orgId: OrgIdSchema,
  taskId: TaskIdSchema,
  repoId: RepoIdSchema,
  repoName: z.string(),
  title: z.string(),
  prompt: z.string(),
  baseBranch: z.string(),
  branch: z.string().nullable(),
  agent: AgentIdSchema,
  provider: ProviderIdSchema,
  status: TaskStatusSchema,
  /** Step that failed (status error) or is running (status provisioning). */
  currentStep: ProvisionStepNameSchema.nullable(),
  error: z.string().nullable(),
  pullRequest: PullRequestInfoSchema.nullable(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type TaskRecord = z.infer<typeof TaskRecordSchema>;

export const SessionRecordSchema = z.object({
  sessionId: SessionIdSchema,
  title: z.string(),
  agent: AgentIdSchema,
  status: SessionStatusSchema,
  error: z.string().nullable(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type SessionRecord = z.infer<typeof SessionRecordSchema>;

/** Normalised view of one ACP envelope, so clients need no ACP knowledge. */
export const TranscriptItemKindSchema = z.enum([
  "user_message",
  "agent_message",
  "agent_thought",
  "tool_call",
  "tool_call_update",
  "plan",
  "permission_request",
  "permission_reply",
  "turn_end",
  "error",
  "other",
]);
export type TranscriptItemKind = z.infer<typeof TranscriptItemKindSchema>;

export const TranscriptEventSchema = z.object({
  sessionId: SessionIdSchema,
  /** Unique and increasing per session. */
  eventIndex: z.number().int(),
  kind: TranscriptItemKindSchema,
  createdAt: z.number(),
  text: z.string().nullable(),
  /** Extra structured data: tool call id/status/title, plan entries, permission id/options. */
  data: z.record(z.string(), z.unknown()).nullable(),
  /** Text or data was cut to the transcript item limit (the text ends with a visible marker). */
  truncated: z.boolean().optional(),
});
export type TranscriptEvent = z.infer<typeof TranscriptEventSchema>;

export const HistoryEventSchema = z.object({
  id: z.number().int(),
  kind: z.string(),
  message: z.string(),
  createdAt: z.number(),
  data: z.record(z.string(), z.unknown()).nullable(),
});
export type HistoryEvent = z.infer<typeof HistoryEventSchema>;

export const ChangedFileSchema = z.object({
  path: z.string(),
  change: z.enum(["added", "modified", "deleted", "renamed", "untracked"]),
  additions: z.number().int(),
  deletions: z.number().int(),
});
export type ChangedFile = z.infer<typeof ChangedFileSchema>;

export const FileDiffSchema = z.object({ path: z.string(), diff: z.string() });
export type FileDiff = z.infer<typeof FileDiffSchema>;

export const SandboxInfoSchema = z.object({
  provider: ProviderIdSchema,
  sandboxId: z.string(),
  name: z.string(),
  workdir: z.string(),
  state: z.enum(["creating", "running", "stopped", "destroyed", "kept"]),
});
export type SandboxInfo = z.infer<typeof SandboxInfoSchema>;

export const TaskSummarySchema = TaskRecordSchema.pick({
  orgId: true,
  taskId: true,
  repoId: true,
  repoName: true,
  title: true,
  branch: true,
  agent: true,
  provider: true,
  status: true,
  currentStep: true,
  error: true,
  pullRequest: true,
  createdAt: true,
  updatedAt: true,
}).extend({
  changedFiles: z.number().int(),
  sessionCount: z.number().int(),
  /** State of the task's sandbox (null: none yet). Lets the organization tell kept sandboxes from orphans. */
  sandboxState: SandboxInfoSchema.shape.state.nullable().optional(),
});
export type TaskSummary = z.infer<typeof TaskSummarySchema>;

/** Everything a task view needs; `seq` is the last task event folded into it. */
export const TaskDetailSchema = z.object({
  seq: z.number().int(),
  task: TaskRecordSchema,
  steps: z.array(ProvisionStepRecordSchema),
  sandbox: SandboxInfoSchema.nullable(),
  sessions: z.array(SessionRecordSchema),
  /** Each session's latest window of events (older ones: getTranscriptPage from `transcriptBefore`). */
  transcript: z.array(TranscriptEventSchema),
  /** Per session with older events than the window: the cursor to page back from (`before`). */
  transcriptBefore: z.record(z.string(), z.number().int()).optional(),
  history: z.array(HistoryEventSchema),
  changes: z.array(ChangedFileSchema),
});
export type TaskDetail = z.infer<typeof TaskDetailSchema>;

export const OrganizationSnapshotSchema = z.object({
  seq: z.number().int(),
  orgId: OrgIdSchema,
  repos: z.array(RepoRecordSchema),
  tasks: z.array(TaskSummarySchema),
});
export type OrganizationSnapshot = z.infer<typeof OrganizationSnapshotSchema>;
