// One task: header with status and actions, provisioning stepper, sessions + transcript, changes and history.
import type { ConnectionState, KilnClient } from "@kiln/client";
import {
  PROVISION_STEPS,
  type ProvisionStepName,
  type ProvisionStepRecord,
  type TaskDetail,
  type TaskRecord,
  TERMINAL_TASK_STATUSES,
  deriveTitle,
} from "@kiln/shared";
import { useEffect, useState } from "react";
import { ChangesPanel, HistoryTimeline } from "./ChangesPanel.tsx";
import { PullRequestActions, PullRequestBadge } from "./GitHub.tsx";
import { SessionArea } from "./Transcript.tsx";
import { badgeFor, formatDuration } from "./format.ts";
import { hrefFor, useAction, useNow, useTask } from "./hooks.ts";
import { ORG_ID } from "./kilnClient.ts";

const STEP_LABEL: Record<ProvisionStepName, string> = {
  "ensure-name": "Name branch",
  "create-sandbox": "Create sandbox",
  "ensure-agent": "Install agent",
  "create-session": "Start session",
};

/** What the view shows between createTask returning and the first snapshot. */
function detailFromRecord(task: TaskRecord): TaskDetail {
  return {
    seq: 0,
    task,
    steps: PROVISION_STEPS.map((step) => ({ step, state: "pending", attempt: 0, startedAt: null, finishedAt: null, error: null, detail: null })),
    sandbox: null,
    sessions: [],
    transcript: [],
    history: [],
    changes: [],
  };
}

export function TaskView(props: {
  client: KilnClient;
  taskId: string;
  initialTask: TaskRecord | null;
  onConnection: (state: ConnectionState | null) => void;
  /** A GitHub App is configured: show Push / Open PR. */
  github?: boolean;
}) {
  const { client, taskId, onConnection } = props;
  const live = useTask(client, ORG_ID, taskId);
  useEffect(() => {
    onConnection(live.connection);
  }, [live.connection, onConnection]);
  useEffect(() => () => onConnection(null), [onConnection]);

  const detail = live.value ?? (props.initialTask ? detailFromRecord(props.initialTask) : null);
  if (!detail) {
    if (live.error) {
      const notFound = "code" in live.error && live.error.code === "not_found";
      return (
        <div className="empty-state" data-testid="task-error">
          <h1>{notFound ? "Task not found" : "Could not load this task"}</h1>
          <p className="error-text">{live.error.message}</p>
          <a className="btn btn-ghost" href={hrefFor.home()}>
            Back to overview
          </a>
        </div>
      );
    }
    return (
      <div className="empty-state">
        <span className="spinner large" aria-hidden="true" />
        <p>Loading task…</p>
      </div>
    );
  }
  return (
    <div className="task-view">
      <TaskHeader client={client} detail={detail} github={props.github ?? false} />
      {live.error && (
        <div className="alert alert-error" role="alert">
          Live updates failed: {live.error.message}
        </div>
      )}
      <div className="task-body">
        <section className="task-center" aria-label="Agent">
          <ProvisioningStepper client={client} detail={detail} />
          <SessionArea client={client} detail={detail} />
        </section>
        <aside className="task-side" aria-label="Changes and history">
          <ChangesPanel client={client} detail={detail} />
          <HistoryTimeline detail={detail} />
        </aside>
      </div>
    </div>
  );
}

function TaskHeader({ client, detail, github }: { client: KilnClient; detail: TaskDetail; github: boolean }) {
  const { task, sandbox } = detail;
  const badge = badgeFor(task.status);
  const [confirming, setConfirming] = useState<"archive" | "kill" | null>(null);
  const action = useAction();
  const terminal = TERMINAL_TASK_STATUSES.includes(task.status);

  async function confirm() {
    const which = confirming;
    setConfirming(null);
    if (which === "archive") await action.run(() => client.archiveTask(ORG_ID, { taskId: task.taskId }));
    if (which === "kill") await action.run(() => client.killTask(ORG_ID, task.taskId));
  }

  return (
    <header className="task-header">
      <div className="task-title-row">
        <h1 className="task-title">{task.title || deriveTitle(task.prompt)}</h1>
        <span className={`badge badge-${badge.kind}`} data-testid="task-status" data-status={badge.kind} role="status">
          {(badge.kind === "working" || badge.kind === "provisioning") && <span className="spinner small" aria-hidden="true" />}
          {badge.label}
        </span>
        {task.pullRequest && <PullRequestBadge pr={task.pullRequest} />}
        <div className="task-actions">
          {github && confirming === null && <PullRequestActions client={client} detail={detail} />}
          {!terminal && confirming === null && (
            <>
              <button type="button" className="btn btn-ghost" data-testid="archive-button" onClick={() => setConfirming("archive")} disabled={action.pending}>
                Archive
              </button>
              <button type="button" className="btn btn-danger-ghost" data-testid="kill-button" onClick={() => setConfirming("kill")} disabled={action.pending}>
                Kill
              </button>
            </>
          )}
          {confirming && (
            <div className="confirm" role="group" aria-label="Confirm">
              <span>{confirming === "archive" ? "Archive this task and release its sandbox?" : "Kill the agent and destroy the sandbox?"}</span>
              <button type="button" className={`btn ${confirming === "kill" ? "btn-danger" : "btn-primary"}`} data-testid="confirm-accept" onClick={confirm} autoFocus>
                {confirming === "archive" ? "Archive" : "Kill"}
              </button>
              <button type="button" className="btn btn-ghost" data-testid="confirm-cancel" onClick={() => setConfirming(null)}>
                Cancel
              </button>
            </div>
          )}
        </div>
      </div>
      <dl className="task-meta">
        <div>
          <dt>Repo</dt>
          <dd>{task.repoName}</dd>
        </div>
        <div>
          <dt>Branch</dt>
          <dd className="mono">
            {task.branch ?? "(naming…)"} <span className="muted">from {task.baseBranch}</span>
          </dd>
        </div>
        <div>
          <dt>Agent</dt>
          <dd>{task.agent}</dd>
        </div>
        <div>
          <dt>Sandbox</dt>
          <dd>{sandbox ? `${sandbox.name} · ${sandbox.provider} · ${sandbox.state}` : `${task.provider} · not created yet`}</dd>
        </div>
        {task.pullRequest && (
          <div>
            <dt>Pull request</dt>
            <dd>
              <a href={task.pullRequest.url} target="_blank" rel="noreferrer">
                #{task.pullRequest.number}
              </a>{" "}
              {task.pullRequest.state}
            </dd>
          </div>
        )}
      </dl>
      {action.error && (
        <div className="alert alert-error" role="alert">
          {action.error.message}
        </div>
      )}
    </header>
  );
}

function stepDuration(step: ProvisionStepRecord, now: number): string | null {
  if (step.startedAt === null) return null;
  return formatDuration((step.finishedAt ?? now) - step.startedAt);
}

function ProvisioningStepper({ client, detail }: { client: KilnClient; detail: TaskDetail }) {
  const steps = PROVISION_STEPS.map(
    (name) => detail.steps.find((s) => s.step === name) ?? { step: name, state: "pending" as const, attempt: 0, startedAt: null, finishedAt: null, error: null, detail: null },
  );
  const running = steps.some((s) => s.state === "running");
  const now = useNow(running, 200);
  const retry = useAction();
  const failed = steps.find((s) => s.state === "failed");
  const allDone = steps.every((s) => s.state === "done");
  const total = allDone ? Math.max(...steps.map((s) => s.finishedAt ?? 0)) - Math.min(...steps.map((s) => s.startedAt ?? Infinity)) : null;
  const sessionError = detail.task.status === "error" && !failed;

  return (
    <section className={`stepper${allDone ? " compact" : ""}`} aria-label="Provisioning">
      <ol className="steps">
        {steps.map((s, i) => (
          <li key={s.step} className={`step step-${s.state}`} data-testid={`step-${s.step}`} data-state={s.state}>
            <span className="step-icon" aria-hidden="true">
              {s.state === "done" ? "✓" : s.state === "failed" ? "!" : s.state === "running" ? <span className="spinner small" /> : i + 1}
            </span>
            <div className="step-text">
              <div className="step-name">
                {STEP_LABEL[s.step]}
                <span className="sr-only"> — {s.state}</span>
                {stepDuration(s, now) && <span className="step-duration">{stepDuration(s, now)}</span>}
                {s.attempt > 1 && <span className="step-attempt">attempt {s.attempt}</span>}
              </div>
              {s.detail && <div className="step-detail" title={s.detail}>{s.detail}</div>}
            </div>
          </li>
        ))}
      </ol>
      {allDone && total !== null && Number.isFinite(total) && <p className="stepper-summary">Provisioned in {formatDuration(total)}</p>}
      {failed && (
        <div className="alert alert-error step-error" role="alert">
          <div>
            <strong>{STEP_LABEL[failed.step]} failed.</strong> {failed.error ?? detail.task.error ?? "No error message was reported."}
          </div>
          <button
            type="button"
            className="btn btn-primary"
            data-testid="step-retry"
            disabled={retry.pending || detail.task.status !== "error"}
            onClick={() => retry.run(() => client.retryTask(ORG_ID, detail.task.taskId))}
          >
            {retry.pending ? "Retrying…" : "Retry"}
          </button>
        </div>
      )}
      {sessionError && (
        <div className="alert alert-error step-error" role="alert">
          <div>
            <strong>The agent failed.</strong> {detail.task.error ?? "See the transcript for details."}
          </div>
          <button
            type="button"
            className="btn btn-ghost"
            data-testid="task-retry"
            disabled={retry.pending}
            onClick={() => retry.run(() => client.retryTask(ORG_ID, detail.task.taskId))}
          >
            Retry
          </button>
        </div>
      )}
      {retry.error && (
        <div className="alert alert-error" role="alert">
          Retry failed: {retry.error.message}
        </div>
      )}
    </section>
  );
}
