// Realtime events. Each actor numbers its events with a gap-free `seq`; a snapshot carries the `seq`
// it includes. Clients fold events with seq = last+1, drop seq <= last (duplicates) and resync from a
// fresh snapshot on a gap, so no event is lost or applied twice across reconnects.
import { z } from "zod";
import {
  ChangedFileSchema,
  HistoryEventSchema,
  type OrganizationSnapshot,
  ProvisionStepRecordSchema,
  RepoRecordSchema,
  SandboxInfoSchema,
  SessionRecordSchema,
  type TaskDetail,
  TaskIdSchema,
  TaskRecordSchema,
  TaskSummarySchema,
  TranscriptEventSchema,
} from "./domain.ts";

export const TASK_EVENT_NAME = "taskEvent";
export const ORG_EVENT_NAME = "orgEvent";

export const TaskEventBodySchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("task"), task: TaskRecordSchema }),
  z.object({ type: z.literal("step"), step: ProvisionStepRecordSchema }),
  z.object({ type: z.literal("sandbox"), sandbox: SandboxInfoSchema.nullable() }),
  z.object({ type: z.literal("session"), session: SessionRecordSchema }),
  z.object({ type: z.literal("session-removed"), sessionId: z.string() }),
  z.object({ type: z.literal("transcript"), event: TranscriptEventSchema }),
  z.object({ type: z.literal("history"), event: HistoryEventSchema }),
  z.object({ type: z.literal("changes"), changes: z.array(ChangedFileSchema) }),
]);
export type TaskEventBody = z.infer<typeof TaskEventBodySchema>;
export const TaskEventSchema = z.intersection(z.object({ seq: z.number().int() }), TaskEventBodySchema);
export type TaskEvent = TaskEventBody & { seq: number };

export const OrgEventBodySchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("repo"), repo: RepoRecordSchema }),
  z.object({ type: z.literal("summary"), summary: TaskSummarySchema }),
  z.object({ type: z.literal("summary-removed"), taskId: TaskIdSchema }),
]);
export type OrgEventBody = z.infer<typeof OrgEventBodySchema>;
export type OrgEvent = OrgEventBody & { seq: number };

/** Replace the item matching `same`, or append. Keeps arrays immutable for React. */
export function upsert<T>(list: T[], item: T, same: (a: T) => boolean): T[] {
  const index = list.findIndex(same);
  if (index === -1) return [...list, item];
  const next = list.slice();
  next[index] = item;
  return next;
}

/** Fold one task event into a detail. Pure; the caller has checked `seq`. */
export function applyTaskEvent(detail: TaskDetail, event: TaskEvent): TaskDetail {
  const next: TaskDetail = { ...detail, seq: event.seq };
  switch (event.type) {
    case "task":
      return { ...next, task: event.task };
    case "step":
      return { ...next, steps: upsert(detail.steps, event.step, (s) => s.step === event.step.step) };
    case "sandbox":
      return { ...next, sandbox: event.sandbox };
    case "session":
      return {
        ...next,
        sessions: upsert(detail.sessions, event.session, (s) => s.sessionId === event.session.sessionId),
      };
    case "session-removed":
      return { ...next, sessions: detail.sessions.filter((s) => s.sessionId !== event.sessionId) };
    case "transcript":
      return {
        ...next,
        transcript: upsert(
          detail.transcript,
          event.event,
          (e) => e.sessionId === event.event.sessionId && e.eventIndex === event.event.eventIndex,
        ),
      };
    case "history":
      return { ...next, history: upsert(detail.history, event.event, (h) => h.id === event.event.id) };
    case "changes":
      return { ...next, changes: event.changes };
  }
}

export function applyOrgEvent(snapshot: OrganizationSnapshot, event: OrgEvent): OrganizationSnapshot {
  const next: OrganizationSnapshot = { ...snapshot, seq: event.seq };
  switch (event.type) {
    case "repo":
      return { ...next, repos: upsert(snapshot.repos, event.repo, (r) => r.repoId === event.repo.repoId) };
    case "summary":
      return {
        ...next,
        tasks: upsert(snapshot.tasks, event.summary, (t) => t.taskId === event.summary.taskId),
      };
    case "summary-removed":
      return { ...next, tasks: snapshot.tasks.filter((t) => t.taskId !== event.taskId) };
  }
}

/** What to do with an incoming event given the last applied seq. */
export function classifySeq(lastSeq: number, eventSeq: number): "apply" | "duplicate" | "gap" {
  if (eventSeq <= lastSeq) return "duplicate";
  if (eventSeq === lastSeq + 1) return "apply";
  return "gap";
}
