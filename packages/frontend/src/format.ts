// Pure display rules: status badges, durations, times.
import type { SessionStatus, TaskStatus } from "@kiln/shared";

export type BadgeKind = "provisioning" | "working" | "needs_input" | "idle" | "error" | "archived" | "killed";

export function badgeFor(status: TaskStatus): { kind: BadgeKind; label: string } {
  switch (status) {
    case "queued":
      return { kind: "provisioning", label: "Queued" };
    case "provisioning":
      return { kind: "provisioning", label: "Provisioning" };
    case "running":
      return { kind: "working", label: "Working" };
    case "needs_input":
      return { kind: "needs_input", label: "Needs input" };
    case "idle":
      return { kind: "idle", label: "Idle" };
    case "error":
      return { kind: "error", label: "Error" };
    case "archived":
      return { kind: "archived", label: "Archived" };
    case "killed":
      return { kind: "killed", label: "Killed" };
  }
}

/** Sidebar groups, in display order. */
export const TASK_GROUPS: Array<{ title: string; statuses: TaskStatus[] }> = [
  { title: "Needs input", statuses: ["needs_input"] },
  { title: "Working", statuses: ["running", "provisioning", "queued"] },
  { title: "Error", statuses: ["error"] },
  { title: "Idle", statuses: ["idle"] },
  { title: "Archived", statuses: ["archived", "killed"] },
];

export const SESSION_STATUS_LABEL: Record<SessionStatus, string> = {
  creating: "Starting",
  ready: "Ready",
  running: "Working",
  needs_input: "Needs input",
  stopped: "Stopped",
  error: "Error",
};

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s % 60)} s`;
}

export function formatTime(at: number): string {
  return new Date(at).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function formatAge(at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 60) return "just now";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  return new Date(at).toLocaleDateString();
}

/** Composer hint for a session that cannot take a message. */
export function composerHint(status: SessionStatus | null, taskStatus: TaskStatus): string {
  if (taskStatus === "archived" || taskStatus === "killed") return `This task is ${taskStatus}.`;
  if (status === null) return "Add a session to talk to the agent.";
  switch (status) {
    case "creating":
      return "The session is starting…";
    case "running":
      return "The agent is working… you can send once it finishes.";
    case "needs_input":
      return "The agent is waiting for your answer above.";
    case "stopped":
      return "This session is stopped. Add a new session to continue.";
    case "error":
      return "This session failed. Retry the task or add a new session.";
    case "ready":
      return "Message the agent — Enter to send, Shift+Enter for a new line";
  }
}
