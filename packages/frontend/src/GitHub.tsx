// GitHub in the workbench: the org's sync status, the "add from GitHub" repo picker, pull-request badges
// and the Push / Open PR buttons. Shown only when the backend has a GitHub App configured.
import type { KilnClient } from "@kiln/client";
import type { GitHubRepoOption, GitHubSnapshot, PullRequestInfo, TaskDetail } from "@kiln/shared";
import { TERMINAL_TASK_STATUSES } from "@kiln/shared";
import { type FormEvent, useEffect, useState } from "react";
import { formatAge } from "./format.ts";
import { type Live, useAction, useNow } from "./hooks.ts";
import { ORG_ID } from "./kilnClient.ts";

export function useGitHub(client: KilnClient, orgId: string, enabled: boolean): Live<GitHubSnapshot> {
  const [state, setState] = useState<Live<GitHubSnapshot>>({ value: null, error: null, connection: "connecting" });
  useEffect(() => {
    if (!enabled) return;
    setState({ value: null, error: null, connection: "connecting" });
    const sub = client.subscribeGitHub(orgId, {
      onChange: (value) => setState((s) => ({ ...s, value, error: null })),
      onConnectionChange: (connection) => setState((s) => ({ ...s, connection })),
      onError: (error) => setState((s) => ({ ...s, error })),
    });
    return () => sub.unsubscribe();
  }, [client, orgId, enabled]);
  return state;
}

const CHECK_LABEL: Record<PullRequestInfo["checks"], string> = { pending: "checks running", success: "checks passed", failure: "checks failed", none: "" };
const REVIEW_LABEL: Record<PullRequestInfo["review"], string> = {
  approved: "approved",
  changes_requested: "changes requested",
  commented: "commented",
  none: "",
};

/** `PR #12 · open` with checks/review; links to GitHub. `compact` for sidebar rows. */
export function PullRequestBadge({ pr, compact = false }: { pr: PullRequestInfo; compact?: boolean }) {
  const details = [CHECK_LABEL[pr.checks], REVIEW_LABEL[pr.review]].filter(Boolean).join(" · ");
  const title = `Pull request #${pr.number}: ${pr.state}${details ? ` (${details})` : ""}`;
  if (compact) {
    return (
      <span className={`pr-pill pr-${pr.state}`} title={title} data-testid="pr-pill">
        #{pr.number}
        {pr.checks === "failure" ? " ✕" : pr.checks === "success" ? " ✓" : ""}
      </span>
    );
  }
  return (
    <a className={`pr-badge pr-${pr.state}`} href={pr.url} target="_blank" rel="noreferrer" title={title} data-testid="pr-badge">
      PR #{pr.number} · {pr.state}
      {pr.checks !== "none" && <span className={`pr-checks pr-checks-${pr.checks}`}>{CHECK_LABEL[pr.checks]}</span>}
      {pr.review !== "none" && <span className="pr-review">{REVIEW_LABEL[pr.review]}</span>}
    </a>
  );
}

/** Push / Open PR for a live task with a running sandbox. */
export function PullRequestActions({ client, detail }: { client: KilnClient; detail: TaskDetail }) {
  const action = useAction();
  const [notice, setNotice] = useState<string | null>(null);
  const { task, sandbox } = detail;
  if (TERMINAL_TASK_STATUSES.includes(task.status) || !task.branch || sandbox?.state !== "running") return null;
  const open = task.pullRequest && (task.pullRequest.state === "open" || task.pullRequest.state === "draft");
  const busy = action.pending || task.status === "running";
  return (
    <div className="pr-actions">
      <button
        type="button"
        className="btn btn-ghost"
        data-testid="push-button"
        disabled={busy}
        title="Commit the agent's work and push the branch to GitHub"
        onClick={() =>
          action.run(async () => {
            setNotice(null);
            const result = await client.pushBranch(ORG_ID, { taskId: task.taskId });
            setNotice(`Pushed ${result.branch} (${result.sha.slice(0, 7)})`);
          })
        }
      >
        Push
      </button>
      <button
        type="button"
        className="btn btn-primary"
        data-testid="open-pr-button"
        disabled={busy}
        onClick={() =>
          action.run(async () => {
            setNotice(null);
            const pr = await client.openPullRequest(ORG_ID, { taskId: task.taskId });
            setNotice(`PR #${pr.number} is ${pr.state}`);
          })
        }
      >
        {open ? "Push to PR" : "Open PR"}
      </button>
      {notice && !action.error && <span className="muted small" role="status">{notice}</span>}
      {action.error && (
        <span className="error-text small" role="alert">
          {action.error.message}
        </span>
      )}
    </div>
  );
}

function syncLine(snapshot: GitHubSnapshot, now: number): string {
  const { sync } = snapshot;
  switch (sync.state) {
    case "never":
      return "Not synced yet";
    case "syncing":
      return `Syncing ${sync.phase ?? ""}${sync.total ? ` ${sync.done}/${sync.total}` : ""}…`;
    case "error":
      return `Sync failed: ${sync.error ?? "unknown error"}`;
    case "idle":
      return sync.lastSyncedAt ? `Synced ${formatAge(sync.lastSyncedAt, now)}` : "Synced";
  }
}

/** Sidebar block: sync status + button, and a picker that registers an installation repo. */
export function GitHubRepos({ client, registered }: { client: KilnClient; registered: number }) {
  const github = useGitHub(client, ORG_ID, true);
  const now = useNow(true, 30_000);
  const sync = useAction();
  const add = useAction();
  const [options, setOptions] = useState<GitHubRepoOption[] | null>(null);
  const [selected, setSelected] = useState("");
  const [listError, setListError] = useState<Error | null>(null);
  const lastSynced = github.value?.sync.lastSyncedAt ?? null;

  useEffect(() => {
    let active = true;
    client.listGitHubRepos(ORG_ID).then(
      (list) => {
        if (!active) return;
        setOptions(list);
        setListError(null);
      },
      (error: unknown) => {
        if (!active) return;
        setOptions([]);
        setListError(error instanceof Error ? error : new Error(String(error)));
      },
    );
    return () => {
      active = false;
    };
  }, [client, lastSynced, registered]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!selected) return;
    const repo = await add.run(() => client.addGitHubRepo(ORG_ID, { fullName: selected }));
    if (repo) setSelected("");
  }

  const available = (options ?? []).filter((r) => r.repoId === null && !r.archived);
  const snapshot = github.value;
  return (
    <div className="github-block" data-testid="github-block">
      <div className="github-sync">
        <span className={`sync-dot sync-${snapshot?.sync.state ?? "never"}`} aria-hidden="true" />
        <span className="sidebar-muted github-sync-text" data-testid="github-sync-status">
          {github.error && !snapshot ? `GitHub: ${github.error.message}` : snapshot ? `GitHub · ${syncLine(snapshot, now)}` : "GitHub…"}
        </span>
        <button
          type="button"
          className="btn-link"
          data-testid="github-sync-button"
          disabled={sync.pending || snapshot?.sync.state === "syncing"}
          onClick={() => sync.run(() => client.syncGitHub(ORG_ID))}
        >
          Sync
        </button>
      </div>
      <form className="repo-form" onSubmit={submit}>
        <label className="sr-only" htmlFor="github-repo-select">
          Add a repository from GitHub
        </label>
        <select
          id="github-repo-select"
          data-testid="github-repo-select"
          value={selected}
          onChange={(e) => {
            setSelected(e.target.value);
            add.clearError();
          }}
          disabled={options === null || available.length === 0}
        >
          <option value="">
            {options === null ? "Loading GitHub repositories…" : available.length === 0 ? "No more GitHub repositories" : "Add from GitHub…"}
          </option>
          {available.map((r) => (
            <option key={r.githubId} value={r.fullName}>
              {r.fullName}
              {r.private ? " (private)" : ""}
            </option>
          ))}
        </select>
        <button type="submit" className="btn btn-ghost" data-testid="github-repo-add" disabled={add.pending || !selected}>
          {add.pending ? "Adding…" : "Add"}
        </button>
        {(add.error ?? sync.error ?? listError) && (
          <p className="form-error" role="alert">
            {(add.error ?? sync.error ?? listError)?.message}
          </p>
        )}
      </form>
    </div>
  );
}
