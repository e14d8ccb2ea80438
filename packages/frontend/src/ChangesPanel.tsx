// Right column: changed files with a unified-diff viewer, and the task's history timeline.
import type { KilnClient } from "@kiln/client";
import type { ChangedFile, FileDiff, TaskDetail } from "@kiln/shared";
import { useEffect, useState } from "react";
import { formatTime } from "./format.ts";
import { ORG_ID } from "./kilnClient.ts";

const CHANGE_LETTER: Record<ChangedFile["change"], string> = { added: "A", modified: "M", deleted: "D", renamed: "R", untracked: "U" };

export function ChangesPanel({ client, detail }: { client: KilnClient; detail: TaskDetail }) {
  const { changes } = detail;
  const [selected, setSelected] = useState<string | null>(null);
  const [diff, setDiff] = useState<{ state: "loading" } | { state: "ready"; diff: FileDiff } | { state: "error"; error: Error } | null>(null);
  const current = changes.find((c) => c.path === selected) ?? null;
  const taskId = detail.task.taskId;

  // Re-fetch when the file is selected and whenever a new changed-files list arrives (a push, not a poll).
  useEffect(() => {
    if (!selected || !changes.some((c) => c.path === selected)) {
      setDiff(null);
      return;
    }
    let cancelled = false;
    setDiff((d) => (d?.state === "ready" && d.diff.path === selected ? d : { state: "loading" }));
    client.getFileDiff(ORG_ID, taskId, selected).then(
      (result) => {
        if (!cancelled) setDiff({ state: "ready", diff: result });
      },
      (error: unknown) => {
        if (!cancelled) setDiff({ state: "error", error: error instanceof Error ? error : new Error(String(error)) });
      },
    );
    return () => {
      cancelled = true;
    };
  }, [client, taskId, selected, changes]);

  const additions = changes.reduce((n, c) => n + c.additions, 0);
  const deletions = changes.reduce((n, c) => n + c.deletions, 0);

  return (
    <section className="panel changes" aria-label="Changed files">
      <h2 className="panel-title">
        Changes
        {changes.length > 0 && (
          <span className="panel-sub">
            {changes.length} {changes.length === 1 ? "file" : "files"} <span className="add">+{additions}</span> <span className="del">−{deletions}</span>
          </span>
        )}
      </h2>
      {changes.length === 0 ? (
        <p className="muted panel-empty">No changes yet. Files the agent edits show up here.</p>
      ) : (
        <ul className="file-list">
          {changes.map((c) => (
            <li key={c.path}>
              <button
                type="button"
                className={`file-row${c.path === selected ? " selected" : ""}`}
                data-testid={`changed-file-${c.path}`}
                aria-pressed={c.path === selected}
                onClick={() => setSelected(c.path === selected ? null : c.path)}
              >
                <span className={`change-letter change-${c.change}`} title={c.change}>
                  {CHANGE_LETTER[c.change]}
                </span>
                <span className="file-path mono" title={c.path}>
                  {c.path}
                </span>
                <span className="file-stats mono">
                  <span className="add">+{c.additions}</span> <span className="del">−{c.deletions}</span>
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {current && diff && (
        <div className="diff-wrap">
          {diff.state === "loading" && <p className="muted panel-empty">Loading diff…</p>}
          {diff.state === "error" && (
            <div className="alert alert-error" role="alert">
              Could not load the diff of {current.path}: {diff.error.message}
            </div>
          )}
          {diff.state === "ready" && <DiffView diff={diff.diff} />}
        </div>
      )}
    </section>
  );
}

interface DiffLine {
  kind: "meta" | "hunk" | "add" | "del" | "ctx";
  text: string;
  oldNo: number | null;
  newNo: number | null;
}

export function parseUnifiedDiff(diff: string): DiffLine[] {
  const out: DiffLine[] = [];
  let oldNo = 0;
  let newNo = 0;
  let inHunk = false;
  const lines = diff.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const text of lines) {
    const hunk = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(text);
    if (hunk) {
      oldNo = Number(hunk[1]);
      newNo = Number(hunk[2]);
      inHunk = true;
      out.push({ kind: "hunk", text, oldNo: null, newNo: null });
    } else if (!inHunk || text.startsWith("diff --git")) {
      inHunk = false;
      out.push({ kind: "meta", text, oldNo: null, newNo: null });
    } else if (text.startsWith("+")) out.push({ kind: "add", text, oldNo: null, newNo: newNo++ });
    else if (text.startsWith("-")) out.push({ kind: "del", text, oldNo: oldNo++, newNo: null });
    else if (text.startsWith("\\")) out.push({ kind: "meta", text, oldNo: null, newNo: null });
    else out.push({ kind: "ctx", text, oldNo: oldNo++, newNo: newNo++ });
  }
  return out;
}

function DiffView({ diff }: { diff: FileDiff }) {
  const lines = parseUnifiedDiff(diff.diff).filter((l) => !(l.kind === "meta" && /^(diff --git|index |--- |\+\+\+ )/.test(l.text)));
  return (
    <div className="diff" data-testid="diff-view" aria-label={`Diff of ${diff.path}`}>
      <div className="diff-head mono">{diff.path}</div>
      {lines.length === 0 ? (
        <p className="muted panel-empty">The diff is empty.</p>
      ) : (
        <table className="diff-table">
          <tbody>
            {lines.map((l, i) => (
              <tr key={i} className={`diff-${l.kind}`}>
                <td className="ln">{l.oldNo ?? ""}</td>
                <td className="ln">{l.newNo ?? ""}</td>
                <td className="code">{l.text || " "}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function HistoryTimeline({ detail }: { detail: TaskDetail }) {
  const events = [...detail.history].sort((a, b) => b.id - a.id);
  return (
    <section className="panel history" aria-label="History">
      <h2 className="panel-title">History</h2>
      {events.length === 0 ? (
        <p className="muted panel-empty">Nothing has happened yet.</p>
      ) : (
        <ol className="timeline" data-testid="history">
          {events.map((h) => (
            <li key={h.id} className={`timeline-item kind-${h.kind.replace(/[^a-z0-9]+/gi, "-")}`}>
              <time className="timeline-time mono" dateTime={new Date(h.createdAt).toISOString()}>
                {formatTime(h.createdAt)}
              </time>
              <span className="timeline-msg">{h.message}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
