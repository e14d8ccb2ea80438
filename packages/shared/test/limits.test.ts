// The size limits: a maximal valid input fits the transport's message limit with margin, anything over
// a limit is a typed invalid_input naming it, and capped outputs are visibly marked.
import { describe, expect, test } from "vitest";
import {
  CODE_MAX_CHARS,
  CreateTaskInputSchema,
  EXEC_OUTPUT_MAX_CHARS,
  KilnError,
  MESSAGE_MAX_CHARS,
  PROMPT_MAX_CHARS,
  READ_FILE_MAX_CHARS,
  RunCodeInputSchema,
  SendMessageInputSchema,
  TRANSCRIPT_ITEM_MAX_CHARS,
  TRANSCRIPT_WINDOW_MAX_CHARS,
  TRANSPORT_MAX_MESSAGE_BYTES,
  type TranscriptEvent,
  WRITE_FILE_MAX_CHARS,
  WriteFileInputSchema,
  capText,
  capTranscriptEvent,
  mergeTranscriptPage,
  parseInput,
  truncationMarker,
} from "../src/index.ts";

// "€" is 3 bytes of UTF-8 for one UTF-16 code unit: the worst case per character on the wire.
const worst = (n: number) => "€".repeat(n);
const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), "utf8");
const margin = TRANSPORT_MAX_MESSAGE_BYTES * 0.8;

const cases = [
  { label: "prompt", limit: PROMPT_MAX_CHARS, schema: CreateTaskInputSchema, make: (s: string) => ({ repoId: "repo-1", prompt: s }) },
  { label: "message", limit: MESSAGE_MAX_CHARS, schema: SendMessageInputSchema, make: (s: string) => ({ taskId: "t1", sessionId: "session-1", text: s }) },
  { label: "code", limit: CODE_MAX_CHARS, schema: RunCodeInputSchema, make: (s: string) => ({ taskId: "t1", language: "bash", code: s }) },
  { label: "content", limit: WRITE_FILE_MAX_CHARS, schema: WriteFileInputSchema, make: (s: string) => ({ taskId: "t1", path: "a.txt", content: s }) },
] as const;

describe("input limits", () => {
  for (const { label, limit, schema, make } of cases) {
    test(`${label}: a maximal input is valid and fits the transport limit with margin`, () => {
      const input = make(worst(limit));
      expect(() => parseInput(schema, input)).not.toThrow();
      expect(bytes(input)).toBeLessThan(margin);
    });

    test(`${label}: one character over is a typed invalid_input naming size and limit`, () => {
      let error: unknown;
      try {
        parseInput(schema, make("a".repeat(limit + 1)));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(KilnError);
      expect((error as KilnError).code).toBe("invalid_input");
      expect((error as KilnError).message).toContain(`${label} is ${limit + 1} characters; the limit is ${limit}`);
    });
  }

  test("the required-field messages are kept", () => {
    expect(() => parseInput(CreateTaskInputSchema, { repoId: "repo-1", prompt: "   " })).toThrow("prompt is required");
    expect(() => parseInput(SendMessageInputSchema, { taskId: "t1", sessionId: "session-1", text: "" })).toThrow("message is empty");
  });
});

describe("output caps fit one message", () => {
  test("worst-case responses stay under the transport limit", () => {
    const marker = truncationMarker(10_000_000, 1).length;
    expect(2 * (EXEC_OUTPUT_MAX_CHARS + marker) * 3).toBeLessThan(margin); // exec stdout + stderr
    expect(READ_FILE_MAX_CHARS * 3).toBeLessThan(margin); // a readFile or readFileRange slice
    // A window (or page) may overshoot its budget by at most one capped item.
    expect((TRANSCRIPT_WINDOW_MAX_CHARS + TRANSCRIPT_ITEM_MAX_CHARS + marker) * 3).toBeLessThan(margin);
  });

  test("capText cuts with a visible marker and says so; short text is untouched", () => {
    expect(capText("short", 10)).toEqual({ text: "short", truncated: false });
    const cut = capText("x".repeat(50), 10);
    expect(cut.truncated).toBe(true);
    expect(cut.text.startsWith("x".repeat(10))).toBe(true);
    expect(cut.text).toContain("[truncated: 50 characters, showing the first 10]");
  });

  const event = (over: Partial<TranscriptEvent> = {}): TranscriptEvent => ({
    sessionId: "session-1",
    eventIndex: 1,
    kind: "tool_call",
    createdAt: 1,
    text: "hello",
    data: { toolCallId: "call-1", status: "done" },
    ...over,
  });

  test("a transcript item over the limit is cut and marked; its small data fields stay", () => {
    expect(capTranscriptEvent(event())).toEqual(event());
    const long = capTranscriptEvent(event({ text: "y".repeat(TRANSCRIPT_ITEM_MAX_CHARS * 3) }));
    expect(long.truncated).toBe(true);
    expect(long.text!.length).toBeLessThan(TRANSCRIPT_ITEM_MAX_CHARS + 100);
    const bulky = capTranscriptEvent(event({ data: { toolCallId: "call-1", rawOutput: "z".repeat(TRANSCRIPT_ITEM_MAX_CHARS * 2) } }));
    expect(bulky.truncated).toBe(true);
    expect(bulky.data).toEqual({ truncated: true, toolCallId: "call-1" });
    expect(bulky.text).toBe("hello");
  });

  test("an older page merges in order without duplicates", () => {
    const loaded = [event({ eventIndex: 3, createdAt: 3 }), event({ eventIndex: 4, createdAt: 4 })];
    const page = { sessionId: "session-1", before: null, events: [1, 2, 3].map((i) => event({ eventIndex: i, createdAt: i })) };
    expect(mergeTranscriptPage(loaded, page).map((e) => e.eventIndex)).toEqual([1, 2, 3, 4]);
  });
});
