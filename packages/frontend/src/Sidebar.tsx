// Left sidebar: repositories (with the "Add repo" form) and the live task list grouped by status.
import type { KilnClient } from "@kiln/client";
import type { OrganizationSnapshot, SessionInfo, TaskSummary } from "@kiln/shared";
import { type FormEvent, useState } from "react";
import { GitHubRepos, PullRequestBadge } from "./GitHub.tsx";
import { SessionBar } from "./Account.tsx";
import { TASK_GROUPS, badgeFor, formatAge } from "./format.ts";
import { type Live, hrefFor, navigate, useAction, useNow } from "./hooks.ts";
import { ORG_ID } from "./kilnClient.ts";

export function Sidebar(props: {
  client: KilnClient;
  org: Live<OrganizationSnapshot>;
  activeTaskId: string | null;
  mode: "mock" | "remote";
  endpoint: string | null;
  session?: SessionInfo | null;
}) {
  const { org } = props;
  return (
    <nav className="sidebar" aria-label="Organization">
      <div className="sidebar-head">
        <a className="brand" href={hrefFor.home()}>
          <span className="brand-mark" aria-hidden="true" />
          Kiln
        </a>
        <span className="mode-chip" title={props.endpoint ?? "In-memory mock backend"}>
          {props.mode === "mock" ? "mock" : (props.endpoint ?? "").replace(/^https?:\/\//, "")}
        </span>
      </div>
      <button type="button" className="btn btn-primary btn-block" data-testid="new-task-button" onClick={() => navigate(hrefFor.newTask())}>
        + New task
      </button>
      {org.error && !org.value ? (
        <div className="sidebar-error" role="alert">
          Could not load the organization: {org.error.message}
        </div>
      ) : org.value === null ? (
        <div className="sidebar-muted">Loading organization…</div>
      ) : (
        <>
          <TaskList tasks={org.value.tasks} activeTaskId={props.activeTaskId} />
          <RepoList client={props.client} snapshot={org.value} github={props.session?.githubConfigured ?? false} />
        </>
      )}
      <SessionBar client={props.client} session={props.session ?? null} />
    </nav>
  );
}

function TaskList({ tasks, activeTaskId }: { tasks: TaskSummary[]; activeTaskId: string | null }) {
  const now = useNow(true, 30_000);
  if (tasks.length === 0) {
    return (
      <section className="sidebar-section">
        <h2 className="sidebar-title">Tasks</h2>
        <p className="sidebar-muted">No tasks yet. Start one with “New task”.</p>
      </section>
    );
  }
  return (
    <section className="sidebar-section sidebar-tasks">
      {TASK_GROUPS.map((group) => {
        const items = tasks.filter((t) => group.statuses.includes(t.status)).sort((a, b) => b.updatedAt - a.updatedAt);
        if (items.length === 0) return null;
        return (
          <div key={group.title} className="task-group">
            <h2 className="sidebar-title">
              {group.title} <span className="count">{items.length}</span>
            </h2>
            <ul>
              {items.map((t) => {
                const badge = badgeFor(t.status);
                return (
                  <li key={t.taskId}>
                    <a
                      href={hrefFor.task(t.taskId)}
                      className={`task-row${t.taskId === activeTaskId ? " active" : ""}`}
                      aria-current={t.taskId === activeTaskId ? "page" : undefined}
                      data-testid={`task-row-${t.taskId}`}
                    >
                      <span className={`dot dot-${badge.kind}`} title={badge.label} aria-label={badge.label} />
                      <span className="task-row-main">
                        <span className="task-row-title">{t.title || <span className="muted-inline">Naming…</span>}</span>
                        <span className="task-row-sub">
                          {t.repoName}
                          {t.branch ? ` · ${t.branch}` : ""}
                        </span>
                      </span>
                      <span className="task-row-side">
                        {t.pullRequest && <PullRequestBadge pr={t.pullRequest} compact />}
                        {t.changedFiles > 0 && <span className="files-pill">{t.changedFiles} files</span>}
                        <span className="age">{formatAge(t.updatedAt, now)}</span>
                      </span>
                    </a>
                  </li>
                );
              })}
            </ul>
          </div>
        );
      })}
    </section>
  );
}

function RepoList({ client, snapshot, github }: { client: KilnClient; snapshot: OrganizationSnapshot; github: boolean }) {
  const [url, setUrl] = useState("");
  const add = useAction();
  async function submit(e: FormEvent) {
    e.preventDefault();
    const repo = await add.run(() => client.addRepo(ORG_ID, { remoteUrl: url.trim() }));
    if (repo) setUrl("");
  }
  return (
    <section className="sidebar-section sidebar-repos">
      <h2 className="sidebar-title">
        Repositories <span className="count">{snapshot.repos.length}</span>
      </h2>
      {snapshot.repos.length === 0 ? (
        <p className="sidebar-muted">No repositories yet. Add a remote URL or a local path below.</p>
      ) : (
        <ul>
          {snapshot.repos.map((r) => (
            <li key={r.repoId} className="repo-row" data-testid={`repo-${r.repoId}`}>
              <span className="repo-name" title={r.remoteUrl}>
                {r.name}
              </span>
              <button type="button" className="btn-link" onClick={() => navigate(hrefFor.newTask(r.repoId))} aria-label={`New task in ${r.name}`}>
                + task
              </button>
            </li>
          ))}
        </ul>
      )}
      {github && <GitHubRepos client={client} registered={snapshot.repos.length} />}
      <form className="repo-form" onSubmit={submit}>
        <label className="sr-only" htmlFor="repo-add-url">
          Repository URL or local path
        </label>
        <input
          id="repo-add-url"
          data-testid="repo-add-url"
          value={url}
          onChange={(e) => {
            setUrl(e.target.value);
            add.clearError();
          }}
          placeholder="https://… , git@… or /local/path"
          autoComplete="off"
          spellCheck={false}
        />
        <button type="submit" className="btn btn-ghost" data-testid="repo-add-submit" disabled={add.pending || url.trim() === ""}>
          {add.pending ? "Adding…" : "Add repo"}
        </button>
        {add.error && (
          <p className="form-error" role="alert">
            {add.error.message}
          </p>
        )}
      </form>
    </section>
  );
}
