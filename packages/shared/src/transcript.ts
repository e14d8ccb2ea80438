// Transcript paging: getTask carries each session's latest window, older events come a page at a time,
// and no transcript item in a detail, page or event is longer than TRANSCRIPT_ITEM_MAX_CHARS.
import { z } from "zod";
import { SessionIdSchema, TaskIdSchema, type TranscriptEvent, TranscriptEventSchema } from "./domain.ts";
import { TRANSCRIPT_ITEM_MAX_CHARS, TRANSCRIPT_PAGE_MAX_EVENTS, capText } from "./limits.ts";

export const GetTranscriptPageInputSchema = z.object({
  taskId: TaskIdSchema,
  sessionId: SessionIdSchema,
  /** Events with eventIndex below this (the cursor of the window or of the previous page); absent: the latest. */
  before: z.number().int().min(1).optional(),
  limit: z.number().int().min(1).max(TRANSCRIPT_PAGE_MAX_EVENTS).optional(),
});
export type GetTranscriptPageInput = z.input<typeof GetTranscriptPageInputSchema>;

export const TranscriptPageSchema = z.object({
  sessionId: SessionIdSchema,
  /** Oldest first. */
  events: z.array(TranscriptEventSchema),
  /** Pass as `before` for the next older page; null when this page reaches the session's first event. */
  before: z.number().int().nullable(),
});
export type TranscriptPage = z.infer<typeof TranscriptPageSchema>;

/** A transcript item as sent to clients: long text and bulky data cut, with `truncated: true`. */
export function capTranscriptEvent(event: TranscriptEvent): TranscriptEvent {
  const text = event.text === null ? null : capText(event.text, TRANSCRIPT_ITEM_MAX_CHARS);
  const dataChars = event.data ? JSON.stringify(event.data).length : 0;
  const dataCut = dataChars > TRANSCRIPT_ITEM_MAX_CHARS;
  if (!text?.truncated && !dataCut) return event;
  return {
    ...event,
    text: text ? text.text : null,
    // Keep the small fields (tool call id, status, title) that the view keys on; drop the bulky ones.
    data: dataCut ? smallFields(event.data ?? {}) : event.data,
    truncated: true,
  };
}

function smallFields(data: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = { truncated: true };
  for (const [key, value] of Object.entries(data)) {
    if (JSON.stringify(value ?? null).length <= 500) kept[key] = value;
  }
  return kept;
}

/** Size of an event for window budgets: its text and data as sent. */
export const transcriptEventChars = (event: TranscriptEvent) =>
  (event.text?.length ?? 0) + (event.data ? JSON.stringify(event.data).length : 0) + 100;

/** Merge an older page into a detail's transcript (dedupe by session + index), keeping the order. */
export function mergeTranscriptPage(transcript: TranscriptEvent[], page: TranscriptPage): TranscriptEvent[] {
  const have = new Set(transcript.map((e) => `${e.sessionId}:${e.eventIndex}`));
  const older = page.events.filter((e) => !have.has(`${e.sessionId}:${e.eventIndex}`));
  return [...older, ...transcript].sort((a, b) => a.createdAt - b.createdAt || a.eventIndex - b.eventIndex);
}
