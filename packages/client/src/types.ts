// The typed Kiln client interface. The remote client (RivetKit) and the in-memory mock both implement it,
// so the workbench runs unchanged on either.
import type {
  AddGitHubRepoInput,
  AddRepoInput,
  AnswerPermissionInput,
  ArchiveTaskInput,
  ChangedFile,
  CreateSessionInput,
  CreateTaskInput,
  DestroyAllSandboxesInput,
  DestroyAllSandboxesResult,
  DestroySandboxResult,
  ExecInput,
  ExecResult,
  FileDiff,
  GetTranscriptPageInput,
  ReadFileRangeInput,
  ReadFileRangeResult,
  TranscriptPage,
  GitHubRepoOption,
  GitHubSnapshot,
  GitHubSyncStatus,
  OpenPullRequestInput,
  PullRequestInfo,
  PushBranchInput,
  PushBranchResult,
  SessionInfo,
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
  /** The task with each session's latest transcript window (`transcriptBefore`: where older pages start). */
  getTask(orgId: string, taskId: string): Promise<TaskDetail>;
  /** A session's events older than `before` (newest page first when paging back). */
  getTranscriptPage(orgId: string, input: GetTranscriptPageInput): Promise<TranscriptPage>;
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
  /** A whole file up to READ_FILE_MAX_CHARS; bigger ones: a typed invalid_input (use readFileRange). */
  readFile(orgId: string, input: ReadFileInput): Promise<string>;
  /** A slice of a file of any size; `truncated` says more follows. */
  readFileRange(orgId: string, input: ReadFileRangeInput): Promise<ReadFileRangeResult>;
  writeFile(orgId: string, input: WriteFileInput): Promise<void>;
  listSandboxes(orgId: string): Promise<Array<SandboxInfo & { taskId: string }>>;
  /** Destroy one task's sandbox: a live task ends with it (killed); an archived task's kept sandbox is deleted. */
  destroySandbox(orgId: string, taskId: string): Promise<DestroySandboxResult>;
  /** Destroy every active sandbox of the organization (`keptOnly`: only those kept after archive). */
  destroyAllSandboxes(orgId: string, input?: DestroyAllSandboxesInput): Promise<DestroyAllSandboxesResult>;

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

  // Sign-in (GitHub OAuth through the backend; single-user mode when it is off)
  /** Who is signed in and which organizations they can open; no token is exposed. */
  getSession(): Promise<SessionInfo>;
  /** Clear the session cookie; the next call needs a new sign-in. */
  signOut(): Promise<void>;

  // GitHub (organization's App installation)
  /** Repositories the org's installation can see, for the repo picker (registered ones carry repoId). */
  listGitHubRepos(orgId: string): Promise<GitHubRepoOption[]>;
  /** Register an installation repo by owner/name (https clone URL, its default branch). */
  addGitHubRepo(orgId: string, input: AddGitHubRepoInput): Promise<RepoRecord>;
  /** Resync installations, repositories, branches and tracked pull requests; resolves when done. */
  syncGitHub(orgId: string): Promise<GitHubSyncStatus>;
  getGitHub(orgId: string): Promise<GitHubSnapshot>;
  /** Live GitHub view of the org: sync status and progress, installations, repos, pull requests. */
  subscribeGitHub(
    orgId: string,
    callbacks: SubscriptionCallbacks<GitHubSnapshot> | ((value: GitHubSnapshot) => void),
  ): Subscription;
  /** Commit the task's uncommitted work and push its branch. */
  pushBranch(orgId: string, input: PushBranchInput): Promise<PushBranchResult>;
  /** Push, then open the task's pull request (an open PR for the branch is reused). */
  openPullRequest(orgId: string, input: OpenPullRequestInput): Promise<PullRequestInfo>;

  dispose(): Promise<void>;
}
