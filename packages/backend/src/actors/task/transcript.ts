// Transcript reads in bounded pieces: getTask's window (each session's latest events) and older pages,
// so no detail or page outgrows the transport's message limit however long a task runs.
import {
  type GetTranscriptPageInput,
  TRANSCRIPT_PAGE_MAX_EVENTS,
  TRANSCRIPT_WINDOW_EVENTS,
  TRANSCRIPT_WINDOW_MAX_CHARS,
  type TranscriptEvent,
  type TranscriptPage,
  capTranscriptEvent,
  transcriptEventChars,
} from "@kiln/shared";
import { and, desc, eq, lt, sql } from "drizzle-orm";
import * as schema from "./schema.ts";
import { type TaskCtx, toTranscriptEvent } from "./store.ts";

// Every column but the raw SDK envelope (only resume replay needs that, and it can be large).
const columns = {
  sessionId: schema.transcriptEvents.sessionId,
  eventIndex: schema.transcriptEvents.eventIndex,
  sdkEventId: schema.transcriptEvents.sdkEventId,
  kind: schema.transcriptEvents.kind,
  text: schema.transcriptEvents.text,
  dataJson: schema.transcriptEvents.dataJson,
  rawJson: sql<null>`null`,
  createdAt: schema.transcriptEvents.createdAt,
};

/** The newest events of one session below `before`, oldest first, within `limit` and `maxChars`. */
async function readSlice(ctx: TaskCtx, sessionId: string, before: number | undefined, limit: number, maxChars: number) {
  const where = before === undefined
    ? eq(schema.transcriptEvents.sessionId, sessionId)
    : and(eq(schema.transcriptEvents.sessionId, sessionId), lt(schema.transcriptEvents.eventIndex, before));
  const rows = await ctx.db
    .select(columns)
    .from(schema.transcriptEvents)
    .where(where)
    .orderBy(desc(schema.transcriptEvents.eventIndex))
    .limit(limit + 1); // one more tells whether older events remain
  const events: TranscriptEvent[] = [];
  let chars = 0;
  for (const row of rows.slice(0, limit)) {
    const event = capTranscriptEvent(toTranscriptEvent(row));
    const size = transcriptEventChars(event);
    if (events.length > 0 && chars + size > maxChars) break; // always at least one event
    events.push(event);
    chars += size;
  }
  events.reverse();
  const more = rows.length > events.length;
  return { events, before: more && events[0] ? events[0].eventIndex : null };
}

/** getTask's transcript: each session's latest window, plus where to page back from. */
export async function readTranscriptWindow(ctx: TaskCtx) {
  const sessions = await ctx.db.selectDistinct({ id: schema.transcriptEvents.sessionId }).from(schema.transcriptEvents);
  // The budget is shared so a task with many sessions still fits one message.
  const perSession = Math.max(10_000, Math.floor(TRANSCRIPT_WINDOW_MAX_CHARS / Math.max(1, sessions.length)));
  const transcript: TranscriptEvent[] = [];
  const transcriptBefore: Record<string, number> = {};
  for (const { id } of sessions) {
    const slice = await readSlice(ctx, id, undefined, TRANSCRIPT_WINDOW_EVENTS, perSession);
    transcript.push(...slice.events);
    if (slice.before !== null) transcriptBefore[id] = slice.before;
  }
  transcript.sort((a, b) => a.createdAt - b.createdAt || a.eventIndex - b.eventIndex);
  return { transcript, transcriptBefore };
}

/** One page of a session's older events. */
export async function readTranscriptPage(ctx: TaskCtx, input: GetTranscriptPageInput): Promise<TranscriptPage> {
  const limit = input.limit ?? TRANSCRIPT_PAGE_MAX_EVENTS;
  const slice = await readSlice(ctx, input.sessionId, input.before, limit, TRANSCRIPT_WINDOW_MAX_CHARS);
  return { sessionId: input.sessionId, ...slice };
}
