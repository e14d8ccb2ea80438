// The typed Kiln client interface. The remote client (RivetKit) and the in-memory mock both implement it,
// so the workbench runs unchanged on either.
import type {
  AddRepoInput,
  AnswerPermissionInput,
  ArchiveTaskInput,
  ChangedFile,
  CreateSessionInput,
  CreateTaskInput,
  ExecInput,
  ExecResult,
  FileDiff,
  OrganizationSnapshot,
  ReadFileInput,
  RenameSessionInput,
  RepoRecord,
  RunCodeInput,
  SandboxInfo,
  SendMessageInput,
  SessionRecord,
  SessionRef,
  TaskDetail,
  TaskRecord,
  TaskSummary,
  WriteFileInput,
} from "@kiln/shared";

/** Connection state of a subscription, for "disconnected" banners. */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

export interface Subscription {
  unsubscribe(): void;
}

export interface SubscriptionCallbacks<T> {
  /** Called with the full, current value after every applied change (and after each resync). */
  onChange: (value: T) => void;
  onConnectionChange?: (state: ConnectionState) => void;
  onError?: (error: Error) => void;
}

export interface KilnClient {
  // Organization
  addRepo(orgId: string, input: AddRepoInput): Promise<RepoRecord>;
  listRepos(orgId: string): Promise<RepoRecord[]>;
  createTask(orgId: string, input: CreateTaskInput): Promise<TaskRecord>;
  listTasks(orgId: string): Promise<TaskSummary[]>;
  getOrganization(orgId: string): Promise<OrganizationSnapshot>;

  // Task
  getTask(orgId: string, taskId: string): Promise<TaskDetail>;
  sendMessage(orgId: string, input: SendMessageInput): Promise<void>;
  answerPermission(orgId: string, input: AnswerPermissionInput): Promise<void>;
  createSession(orgId: string, input: CreateSessionInput): Promise<SessionRecord>;
  stopSession(orgId: string, input: SessionRef): Promise<void>;
  closeSession(orgId: string, input: SessionRef): Promise<void>;
  renameSession(orgId: string, input: RenameSessionInput): Promise<void>;
  retryTask(orgId: string, taskId: string): Promise<void>;
  archiveTask(orgId: string, input: ArchiveTaskInput): Promise<void>;
  killTask(orgId: string, taskId: string): Promise<void>;
  getDiff(orgId: string, taskId: string): Promise<ChangedFile[]>;
  getFileDiff(orgId: string, taskId: string, path: string): Promise<FileDiff>;

  // Sandbox operations (any provider)
  exec(orgId: string, input: ExecInput): Promise<ExecResult>;
  runCode(orgId: string, input: RunCodeInput): Promise<ExecResult>;
  readFile(orgId: string, input: ReadFileInput): Promise<string>;
  writeFile(orgId: string, input: WriteFileInput): Promise<void>;
  listSandboxes(orgId: string): Promise<Array<SandboxInfo & { taskId: string }>>;

  // Realtime
  subscribeOrganization(
    orgId: string,
    callbacks: SubscriptionCallbacks<OrganizationSnapshot> | ((value: OrganizationSnapshot) => void),
  ): Subscription;
  subscribeTask(
    orgId: string,
    taskId: string,
    callbacks: SubscriptionCallbacks<TaskDetail> | ((value: TaskDetail) => void),
  ): Subscription;

  dispose(): Promise<void>;
}
