// Sessions as tabs, the streaming transcript of the selected session, and the composer.
import type { KilnClient } from "@kiln/client";
import { MESSAGE_MAX_CHARS, type SessionRecord, type TaskDetail, TERMINAL_TASK_STATUSES, type TranscriptEvent } from "@kiln/shared";
import { CharCounter } from "./CharCounter.tsx";
import { useOlderTranscript } from "./transcript-pages.ts";
import { type KeyboardEvent, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { SESSION_STATUS_LABEL, composerHint, formatTime } from "./format.ts";
import { useAction } from "./hooks.ts";
import { ORG_ID } from "./kilnClient.ts";
import { renderMarkdown } from "./markdown.ts";
import { type Item, toItems } from "./transcript-items.ts";

export function SessionArea({ client, detail }: { client: KilnClient; detail: TaskDetail }) {
  const { task, sessions } = detail;
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const selected = sessions.find((s) => s.sessionId === selectedId) ?? sessions[0] ?? null;
  const terminal = TERMINAL_TASK_STATUSES.includes(task.status);
  const provisioned = detail.steps.length > 0 && detail.steps.every((s) => s.state === "done");
  const add = useAction();

  async function addSession() {
    const session = await add.run(() => client.createSession(ORG_ID, { taskId: task.taskId }));
    if (session) setSelectedId(session.sessionId);
  }

  return (
    <section className="sessions" aria-label="Sessions">
      {(sessions.length > 0 || (!terminal && provisioned)) && (
      <div className="session-tabs" role="tablist" aria-label="Sessions">
        {sessions.map((s) => (
          <SessionTab key={s.sessionId} client={client} taskId={task.taskId} session={s} selected={s.sessionId === selected?.sessionId} onSelect={() => setSelectedId(s.sessionId)} editable={!terminal} />
        ))}
        {!terminal && provisioned && (
          <button type="button" className="tab-add" data-testid="session-add" onClick={addSession} disabled={add.pending} title="New session" aria-label="New session">
            +
          </button>
        )}
      </div>
      )}
      {add.error && (
        <div className="alert alert-error" role="alert">
          Could not add a session: {add.error.message}
        </div>
      )}
      {selected ? (
        <>
          <SessionToolbar client={client} taskId={task.taskId} session={selected} terminal={terminal} canClose={sessions.length > 1} />
          <Transcript client={client} taskId={task.taskId} session={selected} events={detail.transcript} before={detail.transcriptBefore?.[selected.sessionId]} />
          <Composer key={selected.sessionId} client={client} taskId={task.taskId} session={selected} taskStatus={task.status} />
        </>
      ) : (
        <div className="transcript transcript-empty" data-testid="transcript">
          {provisioned || terminal ? (
            <p>No open sessions.{!terminal && " Add one with + to talk to the agent."}</p>
          ) : task.status === "error" ? (
            <p>Provisioning stopped. Retry the failed step above to start the agent.</p>
          ) : (
            <p>
              <span className="spinner small" aria-hidden="true" /> The agent starts as soon as the sandbox is ready.
            </p>
          )}
        </div>
      )}
    </section>
  );
}

function SessionTab(props: { client: KilnClient; taskId: string; session: SessionRecord; selected: boolean; onSelect: () => void; editable: boolean }) {
  const { session } = props;
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(session.title);
  const rename = useAction();

  async function commit() {
    setEditing(false);
    const next = title.trim();
    if (next && next !== session.title) await rename.run(() => props.client.renameSession(ORG_ID, { taskId: props.taskId, sessionId: session.sessionId, title: next }));
    else setTitle(session.title);
  }

  if (editing) {
    return (
      <input
        className="tab-rename"
        data-testid="session-rename-input"
        aria-label="Session name"
        value={title}
        autoFocus
        onChange={(e) => setTitle(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === "Enter") e.currentTarget.blur();
          if (e.key === "Escape") {
            setTitle(session.title);
            setEditing(false);
          }
        }}
      />
    );
  }
  return (
    <button
      type="button"
      role="tab"
      aria-selected={props.selected}
      className={`tab${props.selected ? " selected" : ""}`}
      data-testid={`session-tab-${session.sessionId}`}
      data-status={session.status}
      onClick={props.onSelect}
      onDoubleClick={() => {
        if (!props.editable) return;
        setTitle(session.title);
        setEditing(true);
      }}
      onKeyDown={(e) => {
        if (e.key === "F2" && props.editable) {
          setTitle(session.title);
          setEditing(true);
        }
      }}
      title={rename.error ? `Rename failed: ${rename.error.message}` : `${SESSION_STATUS_LABEL[session.status]} — double-click or F2 to rename`}
    >
      <span className={`dot dot-session-${session.status}`} aria-hidden="true" />
      {session.title}
      {rename.error && <span className="tab-error"> (rename failed)</span>}
    </button>
  );
}

function SessionToolbar(props: { client: KilnClient; taskId: string; session: SessionRecord; terminal: boolean; canClose: boolean }) {
  const { client, taskId, session, terminal, canClose } = props;
  const action = useAction();
  const ref = { taskId, sessionId: session.sessionId };
  const stoppable = !terminal && (session.status === "running" || session.status === "needs_input" || session.status === "ready" || session.status === "creating");
  return (
    <div className="session-toolbar">
      <span className={`session-status status-${session.status}`}>{SESSION_STATUS_LABEL[session.status]}</span>
      <span className="muted">
        {session.agent} · started {formatTime(session.createdAt)}
      </span>
      {session.status === "error" && session.error && (
        <span className="error-text" title={session.error}>
          {session.error}
        </span>
      )}
      <span className="spacer" />
      {action.error && (
        <span className="error-text" role="alert">
          {action.error.message}
        </span>
      )}
      {!terminal && (
        <>
          <button type="button" className="btn btn-small btn-ghost" data-testid="session-stop" disabled={!stoppable || action.pending} onClick={() => action.run(() => client.stopSession(ORG_ID, ref))}>
            Stop
          </button>
          <button type="button" className="btn btn-small btn-ghost" data-testid="session-close"
            disabled={!canClose || action.pending}
            title={canClose ? "Close this session" : "A task keeps at least one open session"} onClick={() => action.run(() => client.closeSession(ORG_ID, ref))}>
            Close
          </button>
        </>
      )}
    </div>
  );
}

// ---- transcript ---------------------------------------------------------------------------------

function Transcript(props: { client: KilnClient; taskId: string; session: SessionRecord; events: TranscriptEvent[]; before: number | undefined }) {
  const { client, taskId, session, events } = props;
  const pages = useOlderTranscript(client, taskId, session.sessionId, props.before);
  const mine = useMemo(() => {
    const windowed = events.filter((e) => e.sessionId === session.sessionId);
    const first = windowed[0]?.eventIndex ?? Number.POSITIVE_INFINITY;
    return [...pages.older.filter((e) => e.eventIndex < first), ...windowed];
  }, [events, session.sessionId, pages.older]);
  const items = useMemo(() => toItems(mine), [mine]);
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const heightBeforePage = useRef<number | null>(null);
  const lastSize = mine.reduce((n, e) => n + (e.text?.length ?? 0), mine.length);
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (heightBeforePage.current !== null) {
      // An older page was prepended: keep the view where it was instead of jumping.
      el.scrollTop += el.scrollHeight - heightBeforePage.current;
      heightBeforePage.current = null;
    } else if (stick.current) el.scrollTop = el.scrollHeight;
  }, [lastSize, session.status]);

  const loadOlder = () => {
    if (!pages.hasOlder || pages.loading) return;
    heightBeforePage.current = scroller.current?.scrollHeight ?? null;
    void pages.loadOlder();
  };

  return (
    <div
      className="transcript"
      data-testid="transcript"
      ref={scroller}
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
        if (el.scrollTop < 48) loadOlder();
      }}
      aria-live="polite"
    >
      {pages.hasOlder && (
        <div className="transcript-older muted" data-testid="transcript-older">
          {pages.loading ? (
            <>
              <span className="spinner small" aria-hidden="true" /> Loading earlier messages…
            </>
          ) : (
            <button type="button" className="btn btn-ghost" onClick={loadOlder}>
              Load earlier messages
            </button>
          )}
        </div>
      )}
      {pages.error && (
        <div className="alert alert-error" role="alert">
          Could not load earlier messages: {pages.error.message}
        </div>
      )}
      {items.length === 0 && <p className="muted transcript-placeholder">{session.status === "creating" ? "Starting the session…" : "No messages yet."}</p>}
      {items.map((item) => (
        <TranscriptItem key={item.key} item={item} client={client} taskId={taskId} session={session} />
      ))}
      {session.status === "running" && (
        <div className="working" data-testid="agent-working">
          <span className="spinner small" aria-hidden="true" /> Agent is working…
        </div>
      )}
    </div>
  );
}

function TranscriptItem({ item, client, taskId, session }: { item: Item; client: KilnClient; taskId: string; session: SessionRecord }) {
  switch (item.type) {
    case "user":
      return (
        <div className="msg msg-user" data-kind="user_message">
          <div className="msg-meta">You · {formatTime(item.at)}</div>
          <div className="msg-body pre">{item.text}</div>
        </div>
      );
    case "agent":
      return (
        <div className="msg msg-agent" data-kind="agent_message">
          <div className="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(item.text) }} />
        </div>
      );
    case "thought":
      return (
        <details className="thought" data-kind="agent_thought">
          <summary>Thinking</summary>
          <div className="pre">{item.text}</div>
        </details>
      );
    case "tool":
      return (
        <div className={`tool tool-${item.status}`} data-kind="tool_call" data-status={item.status}>
          <span className="tool-icon" aria-hidden="true">
            {item.kind === "edit" ? "✎" : item.kind === "execute" ? "›_" : "⚙"}
          </span>
          <span className="tool-title">{item.title}</span>
          <span className={`pill pill-${item.status}`}>{item.status.replace("_", " ")}</span>
        </div>
      );
    case "plan":
      if (item.entries.length === 0) return null;
      return (
        <div className="plan" data-kind="plan">
          <div className="plan-title">Plan</div>
          <ul>
            {item.entries.map((entry, i) => (
              <li key={i} className={`plan-${entry.status}`}>
                <span className="plan-check" aria-label={entry.status}>
                  {entry.status === "completed" ? "✓" : entry.status === "in_progress" ? "◐" : "○"}
                </span>
                <span className="mono">{entry.content}</span>
              </li>
            ))}
          </ul>
        </div>
      );
    case "permission":
      return <PermissionCard item={item} client={client} taskId={taskId} session={session} />;
    case "error":
      return (
        <div className="msg-error" role="alert" data-kind="error">
          <strong>Agent error</strong> {item.text}
        </div>
      );
    case "turn_end":
      return <div className="turn-end" aria-hidden="true">{item.reason && item.reason !== "end_turn" ? `turn ended: ${item.reason}` : ""}</div>;
    case "other":
      return <div className="muted pre small">{item.text}</div>;
  }
}

function PermissionCard({ item, client, taskId, session }: { item: Extract<Item, { type: "permission" }>; client: KilnClient; taskId: string; session: SessionRecord }) {
  const answer = useAction();
  const open = item.reply === null && session.status === "needs_input";
  const reply = (r: "once" | "reject") =>
    answer.run(() => client.answerPermission(ORG_ID, { taskId, sessionId: session.sessionId, permissionId: item.permissionId, reply: r }));
  return (
    <div className={`permission${open ? " open" : ""}`} data-kind="permission_request">
      <div className="permission-head">
        <span className="permission-icon" aria-hidden="true">?</span>
        <div>
          <div className="permission-label">Permission requested</div>
          <div className="permission-title">{item.title}</div>
        </div>
      </div>
      {open ? (
        <div className="permission-actions">
          <button type="button" className="btn btn-primary" data-testid="permission-allow" disabled={answer.pending} onClick={() => reply("once")}>
            Allow
          </button>
          <button type="button" className="btn btn-ghost" data-testid="permission-reject" disabled={answer.pending} onClick={() => reply("reject")}>
            Reject
          </button>
        </div>
      ) : (
        <div className="permission-answer" data-testid="permission-answer">
          {item.reply === null ? "Not answered" : item.reply === "reject" ? "✗ Rejected" : item.reply === "always" ? "✓ Always allowed" : "✓ Allowed"}
        </div>
      )}
      {answer.error && (
        <div className="form-error" role="alert">
          {answer.error.message}
        </div>
      )}
    </div>
  );
}

// ---- composer -----------------------------------------------------------------------------------

function Composer({ client, taskId, session, taskStatus }: { client: KilnClient; taskId: string; session: SessionRecord; taskStatus: TaskDetail["task"]["status"] }) {
  const [text, setText] = useState("");
  const send = useAction();
  const input = useRef<HTMLTextAreaElement>(null);
  const refocus = useRef(false);
  const enabled = session.status === "ready" && !TERMINAL_TASK_STATUSES.includes(taskStatus);

  useEffect(() => {
    if (enabled && refocus.current) {
      refocus.current = false;
      input.current?.focus();
    }
  }, [enabled]);

  async function submit() {
    const message = text.trim();
    if (!enabled || !message || send.pending) return;
    refocus.current = document.activeElement === input.current;
    const ok = await send.run(async () => {
      await client.sendMessage(ORG_ID, { taskId, sessionId: session.sessionId, text: message });
      return true;
    });
    if (ok) setText("");
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void submit();
    }
  }

  return (
    <form
      className={`composer${enabled ? "" : " disabled"}`}
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <textarea
        ref={input}
        data-testid="composer"
        aria-label="Message to the agent"
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        disabled={!enabled || send.pending}
        placeholder={composerHint(session.status, taskStatus)}
        rows={Math.min(8, Math.max(2, text.split("\n").length))}
      />
      <CharCounter length={text.trim().length} limit={MESSAGE_MAX_CHARS} testId="composer-counter" />
      <button
        type="submit"
        className="btn btn-primary"
        data-testid="composer-send"
        disabled={!enabled || send.pending || text.trim() === "" || text.trim().length > MESSAGE_MAX_CHARS}
      >
        {send.pending ? "Sending…" : "Send"}
      </button>
      {send.error && (
        <div className="form-error composer-error" role="alert">
          {send.error.message}
        </div>
      )}
    </form>
  );
}
