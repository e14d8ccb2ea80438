// Large outputs kept inside the transport's message limit: exec output capped, files over readFile's
// limit refused with a typed error (readFileRange pages them), and a test-only transcript seeder.
import {
  EXEC_OUTPUT_MAX_CHARS,
  type ExecResult,
  KilnError,
  READ_FILE_MAX_CHARS,
  type ReadFileRangeInput,
  type ReadFileRangeResult,
  capText,
} from "@kiln/shared";
import { eq, sql } from "drizzle-orm";
import { z } from "zod";
import type { SandboxHandle, SandboxProvider } from "../../providers/types.ts";
import * as schema from "./schema.ts";
import type { TaskCtx } from "./store.ts";

export function capExecResult(result: ExecResult): ExecResult {
  const stdout = capText(result.stdout, EXEC_OUTPUT_MAX_CHARS);
  const stderr = capText(result.stderr, EXEC_OUTPUT_MAX_CHARS);
  return { ...result, stdout: stdout.text, stderr: stderr.text, truncated: stdout.truncated || stderr.truncated };
}

/** A whole file, or a typed error naming its size when it is over the limit (use readFileRange). */
export async function readWholeFile(provider: SandboxProvider, handle: SandboxHandle, path: string): Promise<string> {
  const content = await provider.readFile(handle, path);
  if (content.length > READ_FILE_MAX_CHARS) {
    throw new KilnError(
      "invalid_input",
      `${path} is ${content.length} characters; readFile's limit is ${READ_FILE_MAX_CHARS} (read it in pieces with readFileRange)`,
    );
  }
  return content;
}

export async function readFileRange(
  provider: SandboxProvider,
  handle: SandboxHandle,
  input: ReadFileRangeInput,
): Promise<ReadFileRangeResult> {
  const whole = await provider.readFile(handle, input.path);
  const offset = Math.min(input.offset ?? 0, whole.length);
  const content = whole.slice(offset, offset + (input.length ?? READ_FILE_MAX_CHARS));
  return { content, offset, totalChars: whole.length, truncated: offset + content.length < whole.length };
}

export const SeedTranscriptInputSchema = z.object({
  sessionId: z.string().min(1).max(200),
  count: z.number().int().min(1).max(50_000),
  textChars: z.number().int().min(0).max(1_000_000),
});

/**
 * Test hook (KILN_TEST_SEED_TRANSCRIPT): append `count` agent messages of `textChars` characters to a
 * session in one transaction, without events, so a test can open a task with a very large transcript.
 */
export async function seedTranscript(ctx: TaskCtx, input: z.output<typeof SeedTranscriptInputSchema>) {
  const [last] = await ctx.db
    .select({ max: sql<number>`coalesce(max(${schema.transcriptEvents.eventIndex}), 0)` })
    .from(schema.transcriptEvents)
    .where(eq(schema.transcriptEvents.sessionId, input.sessionId));
  let next = Number(last?.max ?? 0) + 1;
  const now = Date.now();
  for (let start = 0; start < input.count; start += 200) {
    const batch = [];
    for (let i = start; i < Math.min(input.count, start + 200); i++) {
      const marker = `seed ${next} `;
      batch.push({
        sessionId: input.sessionId,
        eventIndex: next,
        sdkEventId: null,
        kind: "agent_message",
        text: marker + "x".repeat(Math.max(0, input.textChars - marker.length)),
        dataJson: null,
        rawJson: null,
        createdAt: now + i, // after what is there, in index order
      });
      next++;
    }
    await ctx.db.insert(schema.transcriptEvents).values(batch);
  }
  return { lastIndex: next - 1 };
}
