// Size limits of every client-callable operation, in one place. RivetKit's transport refuses a WebSocket
// message over its limit with an opaque error ("Incoming/Outgoing message too long", a disposed
// connection, close 1006), so every input and every response is kept well inside it (research/friction-log.md).
import { z } from "zod";

/**
 * The transport's limit per message, both ways. RivetKit defaults to 64 KiB incoming / 1 MiB outgoing;
 * the backend's registry raises incoming to this same 1 MiB (packages/backend/src/registry.ts).
 */
export const TRANSPORT_MAX_MESSAGE_BYTES = 1_048_576;

/*
 * Limits count UTF-16 code units (JS `.length`, what users see as characters). The wire carries UTF-8
 * inside a binary envelope, at most 3 bytes per code unit, so a maximal input is ≤ 3 × limit bytes plus a
 * small envelope; each limit below keeps that under ~3/4 of the transport limit.
 */
export const PROMPT_MAX_CHARS = 100_000;
export const MESSAGE_MAX_CHARS = 100_000;
export const CODE_MAX_CHARS = 100_000;
export const COMMAND_MAX_CHARS = 10_000;
/** writeFile content: ≤ 750 000 bytes on the wire at worst. */
export const WRITE_FILE_MAX_CHARS = 250_000;

// Responses and realtime events.
/** readFile returns whole files up to this; readFileRange pages bigger ones by this much at most. */
export const READ_FILE_MAX_CHARS = 250_000;
/** exec/runCode keep this much of stdout and of stderr each (the rest is cut, `truncated: true`). */
export const EXEC_OUTPUT_MAX_CHARS = 100_000;
/** A transcript item's text (or data JSON) in a detail, page or event; longer ones are cut and marked. */
export const TRANSCRIPT_ITEM_MAX_CHARS = 20_000;
/** getTask's transcript window per session: the latest events, at most this many... */
export const TRANSCRIPT_WINDOW_EVENTS = 200;
/** ...and at most this much text + data in all (a window always holds at least one event). */
export const TRANSCRIPT_WINDOW_MAX_CHARS = 150_000;
/** getTranscriptPage: most events one page may hold (same character budget as the window). */
export const TRANSCRIPT_PAGE_MAX_EVENTS = 500;
/** getTask's history: the latest entries only. */
export const HISTORY_WINDOW_ENTRIES = 300;

/** Marker appended to text cut to a limit, so the cut is visible wherever it is shown. */
export const truncationMarker = (total: number, kept: number) =>
  `\n… [truncated: ${total} characters, showing the first ${kept}]`;

/** Cut `text` to `limit` characters with a visible marker; `truncated` says whether it was cut. */
export function capText(text: string, limit: number): { text: string; truncated: boolean } {
  if (text.length <= limit) return { text, truncated: false };
  return { text: text.slice(0, limit) + truncationMarker(text.length, limit), truncated: true };
}

/** A string field with a character limit whose error names the size and the limit. */
export function limitedString(label: string, limit: number, options: { trim?: boolean; required?: string } = {}) {
  let s = z.string({ error: `${label} is required` });
  if (options.trim) s = s.trim();
  if (options.required) s = s.min(1, options.required);
  return s.max(limit, {
    error: (issue) => `${label} is ${typeof issue.input === "string" ? issue.input.length : "too many"} characters; the limit is ${limit}`,
  });
}
