// Inputs of every client-callable operation. The backend parses each with these at the boundary.
import { z } from "zod";
import {
  AgentIdSchema,
  BranchNameSchema,
  ProviderIdSchema,
  RepoIdSchema,
  SessionIdSchema,
  TaskIdSchema,
} from "./domain.ts";
import {
  CODE_MAX_CHARS,
  COMMAND_MAX_CHARS,
  MESSAGE_MAX_CHARS,
  PROMPT_MAX_CHARS,
  READ_FILE_MAX_CHARS,
  WRITE_FILE_MAX_CHARS,
  limitedString,
} from "./limits.ts";

/** https, ssh (`git@host:path` or `ssh://`), `file://` or an absolute local path. */
export const RemoteUrlSchema = z
  .string({ error: "remoteUrl is required" })
  .trim()
  .min(1, "remoteUrl is required")
  .max(2000, "remoteUrl is too long")
  .refine(
    (u) =>
      /^https?:\/\/[^\s]+$/.test(u) ||
      /^ssh:\/\/[^\s]+$/.test(u) ||
      /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$/.test(u) ||
      /^file:\/\/\/[^\s]*$/.test(u) ||
      /^\/[^\0]*$/.test(u),
    { message: "remoteUrl must be an https, ssh or file:// URL, or an absolute local path" },
  );

export const AddRepoInputSchema = z.object({
  remoteUrl: RemoteUrlSchema,
  name: z.string().trim().min(1).max(200).optional(),
  defaultBranch: BranchNameSchema.optional(),
  defaultProvider: ProviderIdSchema.optional(),
  defaultAgent: AgentIdSchema.optional(),
});
export type AddRepoInput = z.input<typeof AddRepoInputSchema>;

export const CreateTaskInputSchema = z.object({
  repoId: RepoIdSchema,
  prompt: limitedString("prompt", PROMPT_MAX_CHARS, { trim: true, required: "prompt is required" }),
  baseBranch: BranchNameSchema.optional(),
  branch: BranchNameSchema.optional(),
  title: z.string().trim().min(1).max(200).optional(),
  agent: AgentIdSchema.optional(),
  provider: ProviderIdSchema.optional(),
});
export type CreateTaskInput = z.input<typeof CreateTaskInputSchema>;

export const TaskRefSchema = z.object({ taskId: TaskIdSchema });
export type TaskRef = z.input<typeof TaskRefSchema>;

export const SendMessageInputSchema = z.object({
  taskId: TaskIdSchema,
  sessionId: SessionIdSchema,
  text: limitedString("message", MESSAGE_MAX_CHARS, { trim: true, required: "message is empty" }),
});
export type SendMessageInput = z.input<typeof SendMessageInputSchema>;

export const PermissionReplySchema = z.enum(["once", "always", "reject"]);
export type PermissionReply = z.infer<typeof PermissionReplySchema>;

export const AnswerPermissionInputSchema = z.object({
  taskId: TaskIdSchema,
  sessionId: SessionIdSchema,
  permissionId: z.string().min(1, "permissionId is required").max(200),
  reply: PermissionReplySchema,
});
export type AnswerPermissionInput = z.input<typeof AnswerPermissionInputSchema>;

export const CreateSessionInputSchema = z.object({
  taskId: TaskIdSchema,
  agent: AgentIdSchema.optional(),
  title: z.string().trim().min(1).max(100).optional(),
});
export type CreateSessionInput = z.input<typeof CreateSessionInputSchema>;

export const SessionRefSchema = z.object({ taskId: TaskIdSchema, sessionId: SessionIdSchema });
export type SessionRef = z.input<typeof SessionRefSchema>;

export const RenameSessionInputSchema = SessionRefSchema.extend({
  title: z.string().trim().min(1, "title is required").max(100),
});
export type RenameSessionInput = z.input<typeof RenameSessionInputSchema>;

export const GetDiffInputSchema = z.object({
  taskId: TaskIdSchema,
  /** Without a path: the changed-file list only. */
  path: z.lazy(() => SandboxPathSchema).optional(),
});
export type GetDiffInput = z.input<typeof GetDiffInputSchema>;

// Sandbox operations (seed 002), available for every provider.
export const ExecInputSchema = z.object({
  taskId: TaskIdSchema,
  command: limitedString("command", COMMAND_MAX_CHARS, { required: "command is required" }),
  timeoutMs: z.number().int().min(100).max(600_000).optional(),
});
export type ExecInput = z.input<typeof ExecInputSchema>;

export const RunCodeInputSchema = z.object({
  taskId: TaskIdSchema,
  language: z.enum(["javascript", "python", "bash"]),
  code: limitedString("code", CODE_MAX_CHARS, { required: "code is required" }),
  timeoutMs: z.number().int().min(100).max(600_000).optional(),
});
export type RunCodeInput = z.input<typeof RunCodeInputSchema>;

/**
 * Why `p` is not an acceptable path inside a sandbox's work dir, or null: relative, no `..`, no NUL,
 * not the work dir itself, nothing inside `.git` (the providers also check symlinks on disk).
 */
export function sandboxPathProblem(p: string): string | null {
  if (p.includes("\0")) return "path may not contain a null byte";
  if (p.startsWith("/")) return "path must be relative to the work dir";
  const parts = p.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) return "path may not contain '..'";
  if (parts.length === 0) return "path must name a file inside the work dir";
  if (parts.some((part) => part.toLowerCase() === ".git")) return "path may not be inside .git";
  return null;
}

export const SandboxPathSchema = z
  .string()
  .min(1, "path is required")
  .max(4096)
  .superRefine((p, ctx) => {
    const problem = sandboxPathProblem(p);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

export const ReadFileInputSchema = z.object({ taskId: TaskIdSchema, path: SandboxPathSchema });
export type ReadFileInput = z.input<typeof ReadFileInputSchema>;

/** One slice of a file of any size (characters from `offset`), for files over readFile's limit. */
export const ReadFileRangeInputSchema = ReadFileInputSchema.extend({
  offset: z.number().int().min(0).optional(),
  length: z.number().int().min(1).max(READ_FILE_MAX_CHARS).optional(),
});
export type ReadFileRangeInput = z.input<typeof ReadFileRangeInputSchema>;

export const ReadFileRangeResultSchema = z.object({
  content: z.string(),
  offset: z.number().int(),
  /** The file's whole length in characters. */
  totalChars: z.number().int(),
  /** More of the file follows this slice (read on from offset + content.length). */
  truncated: z.boolean(),
});
export type ReadFileRangeResult = z.infer<typeof ReadFileRangeResultSchema>;

export const WriteFileInputSchema = z.object({
  taskId: TaskIdSchema,
  path: SandboxPathSchema,
  content: limitedString("content", WRITE_FILE_MAX_CHARS),
});
export type WriteFileInput = z.input<typeof WriteFileInputSchema>;

export const ArchiveTaskInputSchema = z.object({
  taskId: TaskIdSchema,
  /** Keep the sandbox for debugging instead of releasing it. */
  keepSandbox: z.boolean().optional(),
});
export type ArchiveTaskInput = z.input<typeof ArchiveTaskInputSchema>;

/**
 * Destroy one task's sandbox (seed 002 `destroyWorkspace`). A live task ends with it (status
 * `killed`: its sandbox is where it runs); an archived task's kept sandbox is deleted and the task
 * stays archived. Idempotent: a task without a sandbox is a no-op.
 */
export const DestroySandboxInputSchema = z.object({ taskId: TaskIdSchema });
export type DestroySandboxInput = z.input<typeof DestroySandboxInputSchema>;

export const DestroySandboxResultSchema = z.object({
  taskId: TaskIdSchema,
  /** The sandbox's name, or null when the task never had one. */
  name: z.string().nullable(),
  /** True when a sandbox was deleted by this call (false: there was none left). */
  destroyed: z.boolean(),
  /** True when the task was live and destroying its sandbox ended it (status `killed`). */
  killedTask: z.boolean(),
});
export type DestroySandboxResult = z.infer<typeof DestroySandboxResultSchema>;

/** Destroy every active sandbox of the organization (seed 002 `destroyAll`). */
export const DestroyAllSandboxesInputSchema = z.object({
  /** Only sandboxes kept after archive (debugging leftovers); live tasks are left alone. */
  keptOnly: z.boolean().optional(),
});
export type DestroyAllSandboxesInput = z.input<typeof DestroyAllSandboxesInputSchema>;

export const DestroyAllSandboxesResultSchema = z.object({
  results: z.array(DestroySandboxResultSchema),
  /** Tasks whose sandbox could not be destroyed; the others were still attempted. */
  failed: z.array(z.object({ taskId: TaskIdSchema, error: z.string() })),
});
export type DestroyAllSandboxesResult = z.infer<typeof DestroyAllSandboxesResultSchema>;

export const ExecResultSchema = z.object({
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  durationMs: z.number(),
  /** stdout or stderr was cut to EXEC_OUTPUT_MAX_CHARS (the cut text ends with a visible marker). */
  truncated: z.boolean().optional(),
});
export type ExecResult = z.infer<typeof ExecResultSchema>;
