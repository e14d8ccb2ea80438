// "New task" form. Submitting navigates to the task at once; provisioning renders from task state.
import type { KilnClient } from "@kiln/client";
import {
  PROMPT_MAX_CHARS,
  AGENT_IDS,
  type AgentId,
  KilnError,
  type OrganizationSnapshot,
  PROVIDER_IDS,
  type ProviderId,
  type TaskRecord,
  deriveTitle,
  slugify,
} from "@kiln/shared";
import { type FormEvent, useState } from "react";
import { CharCounter } from "./CharCounter.tsx";
import { hrefFor, useAction } from "./hooks.ts";
import { ORG_ID } from "./kilnClient.ts";

const AGENT_LABEL: Record<AgentId, string> = { mock: "Mock (scripted)", claude: "Claude Code", codex: "Codex", opencode: "OpenCode", amp: "Amp" };
const PROVIDER_LABEL: Record<ProviderId, string> = { local: "Local", daytona: "Daytona" };

export function NewTaskForm(props: {
  client: KilnClient;
  org: OrganizationSnapshot | null;
  initialRepoId: string | null;
  onCreated: (task: TaskRecord) => void;
}) {
  const repos = props.org?.repos ?? [];
  const [repoId, setRepoId] = useState<string>(props.initialRepoId ?? "");
  const repo = repos.find((r) => r.repoId === repoId) ?? repos[0] ?? null;
  const [baseBranch, setBaseBranch] = useState("");
  const [branch, setBranch] = useState("");
  const [agent, setAgent] = useState<AgentId | "">("");
  const [provider, setProvider] = useState<ProviderId | "">("");
  const [prompt, setPrompt] = useState("");
  const create = useAction();

  if (!props.org) {
    return (
      <div className="empty-state">
        <span className="spinner large" aria-hidden="true" />
        <p>Loading repositories…</p>
      </div>
    );
  }
  if (!repo) {
    return (
      <div className="empty-state">
        <h1>Add a repository first</h1>
        <p>Tasks run against a repository. Add one in the sidebar: a remote URL (https or ssh) or an absolute local path.</p>
      </div>
    );
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!repo) return;
    const task = await create.run(() =>
      props.client.createTask(ORG_ID, {
        repoId: repo.repoId,
        prompt,
        baseBranch: baseBranch.trim() || undefined,
        branch: branch.trim() || undefined,
        agent: agent || repo.defaultAgent,
        provider: provider || repo.defaultProvider,
      }),
    );
    if (task) props.onCreated(task);
  }

  const issues = create.error instanceof KilnError ? create.error.issues : [];
  const issueFor = (field: string) => issues.find((i) => i.path === field)?.message;
  const suggestedBranch = `kiln/${slugify(deriveTitle(prompt || "task"))}`;

  return (
    <div className="page">
      <header className="page-head">
        <h1>New task</h1>
        <p className="muted">The agent works on its own branch in a fresh sandbox. You can follow along and step in at any time.</p>
      </header>
      <form className="task-form" onSubmit={submit}>
        <div className="field-row">
          <label className="field">
            <span>Repository</span>
            <select data-testid="task-repo" value={repo.repoId} onChange={(e) => setRepoId(e.target.value)}>
              {repos.map((r) => (
                <option key={r.repoId} value={r.repoId}>
                  {r.name} — {r.remoteUrl}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div className="field-row">
          <label className="field">
            <span>Base branch</span>
            <input
              data-testid="task-base-branch"
              value={baseBranch}
              onChange={(e) => setBaseBranch(e.target.value)}
              placeholder={repo.defaultBranch}
              spellCheck={false}
            />
            {issueFor("baseBranch") && <small className="form-error">{issueFor("baseBranch")}</small>}
          </label>
          <label className="field">
            <span>
              Branch name <em>optional</em>
            </span>
            <input data-testid="task-branch" value={branch} onChange={(e) => setBranch(e.target.value)} placeholder={suggestedBranch} spellCheck={false} />
            {issueFor("branch") && <small className="form-error">{issueFor("branch")}</small>}
          </label>
        </div>
        <div className="field-row">
          <label className="field">
            <span>Agent</span>
            <select data-testid="task-agent" value={agent || repo.defaultAgent} onChange={(e) => setAgent(e.target.value as AgentId)}>
              {AGENT_IDS.map((a) => (
                <option key={a} value={a}>
                  {AGENT_LABEL[a]}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Sandbox provider</span>
            <select data-testid="task-provider" value={provider || repo.defaultProvider} onChange={(e) => setProvider(e.target.value as ProviderId)}>
              {PROVIDER_IDS.map((p) => (
                <option key={p} value={p}>
                  {PROVIDER_LABEL[p]}
                </option>
              ))}
            </select>
          </label>
        </div>
        <label className="field">
          <span>Prompt</span>
          <textarea
            data-testid="task-prompt"
            value={prompt}
            onChange={(e) => setPrompt(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) {
                e.preventDefault();
                e.currentTarget.form?.requestSubmit();
              }
            }}
            rows={8}
            placeholder="Describe the task… (Ctrl+Enter to start)"
            autoFocus
          />
          <CharCounter length={prompt.trim().length} limit={PROMPT_MAX_CHARS} testId="task-prompt-counter" always />
          {issueFor("prompt") && <small className="form-error">{issueFor("prompt")}</small>}
        </label>
        {create.error && (
          <div className="alert alert-error" role="alert">
            {create.error.message}
          </div>
        )}
        <div className="form-actions">
          <a className="btn btn-ghost" href={hrefFor.home()}>
            Cancel
          </a>
          <button type="submit" className="btn btn-primary" data-testid="task-submit" disabled={create.pending || prompt.trim() === "" || prompt.trim().length > PROMPT_MAX_CHARS}>
            {create.pending ? "Starting…" : "Start task"}
          </button>
        </div>
      </form>
    </div>
  );
}
