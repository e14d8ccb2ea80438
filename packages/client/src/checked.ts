// Every call's input is validated with the same shared schemas the backend uses, before it is sent:
// an oversize or malformed input gets a typed `invalid_input` naming the limit instead of reaching the
// transport (which refuses messages over its limit with an opaque error). The backend validates again.
import {
  AddGitHubRepoInputSchema,
  AddRepoInputSchema,
  AnswerPermissionInputSchema,
  ArchiveTaskInputSchema,
  CreateSessionInputSchema,
  CreateTaskInputSchema,
  DestroyAllSandboxesInputSchema,
  ExecInputSchema,
  GetDiffInputSchema,
  GetTranscriptPageInputSchema,
  OpenPullRequestInputSchema,
  PushBranchInputSchema,
  ReadFileInputSchema,
  ReadFileRangeInputSchema,
  RenameSessionInputSchema,
  RunCodeInputSchema,
  SendMessageInputSchema,
  SessionRefSchema,
  WriteFileInputSchema,
  parseInput,
} from "@kiln/shared";

/** Action → [schema, the backend's label for it] (the same message either side). */
const inputs = {
  addRepo: [AddRepoInputSchema, "repository"],
  createTask: [CreateTaskInputSchema, "task"],
  destroyAllSandboxes: [DestroyAllSandboxesInputSchema, "input"],
  sendMessage: [SendMessageInputSchema, "message"],
  answerPermission: [AnswerPermissionInputSchema, "permission answer"],
  createSession: [CreateSessionInputSchema, "session"],
  stopSession: [SessionRefSchema, "session"],
  closeSession: [SessionRefSchema, "session"],
  renameSession: [RenameSessionInputSchema, "session"],
  archive: [ArchiveTaskInputSchema, "archive"],
  getFileDiff: [GetDiffInputSchema, "diff"],
  exec: [ExecInputSchema, "command"],
  runCode: [RunCodeInputSchema, "code"],
  readFile: [ReadFileInputSchema, "file"],
  readFileRange: [ReadFileRangeInputSchema, "file range"],
  writeFile: [WriteFileInputSchema, "file"],
  getTranscriptPage: [GetTranscriptPageInputSchema, "transcript page"],
  addGitHubRepo: [AddGitHubRepoInputSchema, "repository"],
  pushBranch: [PushBranchInputSchema, "push"],
  openPullRequest: [OpenPullRequestInputSchema, "pull request"],
} as const;

/** The input unchanged when the action's schema accepts it; otherwise a thrown `invalid_input` KilnError. */
export function checked<T>(action: keyof typeof inputs, input: T): T {
  const [schema, what] = inputs[action];
  parseInput(schema, input, what);
  return input;
}
