// Task status is derived from its steps and sessions, so it can never disagree with them.
import type { ProvisionStepRecord, SessionRecord, TaskStatus } from "./domain.ts";

export function deriveTaskStatus(
  current: TaskStatus,
  steps: Pick<ProvisionStepRecord, "state">[],
  sessions: Pick<SessionRecord, "status">[],
): TaskStatus {
  if (current === "archived" || current === "killed") return current;
  if (steps.some((s) => s.state === "failed")) return "error";
  if (steps.every((s) => s.state === "pending")) return "queued";
  if (!steps.every((s) => s.state === "done")) return "provisioning";
  const live = sessions.filter((s) => s.status !== "stopped");
  if (live.some((s) => s.status === "needs_input")) return "needs_input";
  if (live.some((s) => s.status === "running" || s.status === "creating")) return "running";
  if (live.some((s) => s.status === "error")) return "error";
  return "idle";
}

/** The step to show: the failed one, else the running one, else the first pending one. */
export function currentStepOf<T extends { step: string; state: string }>(steps: T[]): T["step"] | null {
  return (
    steps.find((s) => s.state === "failed")?.step ??
    steps.find((s) => s.state === "running")?.step ??
    (steps.some((s) => s.state === "done") ? (steps.find((s) => s.state === "pending")?.step ?? null) : null)
  );
}
