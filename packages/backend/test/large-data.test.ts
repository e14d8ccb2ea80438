// Size limits end to end (issue 9 part 4, issue 10 part 5): every input inside the contract works,
// anything over it is a typed invalid_input naming the limit (from the client before sending, and from
// the backend for a caller that skips the client), and big transcripts, files and exec output come back
// in bounded pieces that never exceed the transport's message limit.
import { type KilnClient, createKilnClient } from "@kiln/client";
import {
  DEFAULT_ORG_ID,
  EXEC_OUTPUT_MAX_CHARS,
  KilnError,
  MESSAGE_MAX_CHARS,
  PROMPT_MAX_CHARS,
  READ_FILE_MAX_CHARS,
  type RepoRecord,
  TRANSCRIPT_ITEM_MAX_CHARS,
  TRANSCRIPT_WINDOW_EVENTS,
  type TaskDetail,
  type TranscriptEvent,
  WRITE_FILE_MAX_CHARS,
} from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Backend, makeGitRepo, startBackend, waitFor } from "./harness.ts";
import { type RawClient, rawClient, seedTranscript } from "./seed.ts";

const org = DEFAULT_ORG_ID;
let backend: Backend;
let client: KilnClient;
let repo: RepoRecord;
let raw: RawClient;

beforeAll(async () => {
  backend = await startBackend({ env: { KILN_TEST_SEED_TRANSCRIPT: "true" } });
  client = createKilnClient({ endpoint: backend.url, callTimeoutMs: 120_000 });
  repo = await client.addRepo(org, { remoteUrl: makeGitRepo({ "README.md": "# large\n" }) });
  // A caller that skips @kiln/client's checks, to prove the backend enforces the same limits.
  raw = await rawClient(backend);
}, 90_000);

afterAll(async () => {
  await raw?.dispose();
  await client?.dispose();
  await backend?.destroy();
});

async function idle(taskId: string): Promise<TaskDetail> {
  return waitFor(`task ${taskId} idle`, async () => {
    const d = await client.getTask(org, taskId);
    if (d.task.status === "error") throw new Error(`task failed: ${d.task.error}`);
    return d.task.status === "idle" ? d : null;
  }, 90_000);
}

async function rejection(work: Promise<unknown>): Promise<KilnError> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KilnError);
  return error as KilnError;
}

/** Big text that is not one repeated character (so a cut or mix-up shows). */
const text = (n: number, seed = "k") => {
  let out = "";
  let i = 0;
  while (out.length < n) out += `${seed}${i++} `;
  return out.slice(0, n);
};

let taskId: string;

describe("inputs at and over the limits", () => {
  test("a prompt at the limit works; one over is a typed invalid_input naming the limit, from client and backend", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: text(PROMPT_MAX_CHARS - 1_000, "p") });
    taskId = record.taskId;
    const detail = await idle(taskId);
    const prompt = detail.transcript.find((e) => e.kind === "user_message");
    // The stored prompt is whole; the detail carries it cut to the item limit, visibly.
    expect(prompt?.truncated).toBe(true);
    expect(prompt?.text?.length).toBeLessThan(TRANSCRIPT_ITEM_MAX_CHARS + 200);
    expect(prompt?.text).toContain("[truncated:");

    const over = PROMPT_MAX_CHARS + 20_000;
    const fromClient = await rejection(client.createTask(org, { repoId: repo.repoId, prompt: "x".repeat(over) }));
    expect(fromClient.code).toBe("invalid_input");
    expect(fromClient.message).toContain(`prompt is ${over} characters; the limit is ${PROMPT_MAX_CHARS}`);

    const fromBackend = (await raw.organization
      .getOrCreate(["org", org])
      .createTask!({ repoId: repo.repoId, prompt: "x".repeat(over) })
      .then(() => null, (e: unknown) => e)) as { code?: string; message?: string } | null;
    expect(fromBackend?.code).toBe("invalid_input");
    expect(fromBackend?.message).toContain(`prompt is ${over} characters; the limit is ${PROMPT_MAX_CHARS}`);
    // Nothing was created by either refused call.
    expect((await client.listTasks(org)).length).toBe(1);
  });

  test("a message at the limit is delivered; one over is refused before sending", async () => {
    await client.sendMessage(org, { taskId, sessionId: "session-1", text: text(MESSAGE_MAX_CHARS, "m") });
    let last: TaskDetail | null = null;
    await waitFor("the long message in the transcript", async () => {
      const d = await client.getTask(org, taskId);
      last = d;
      // The scripted agent answers "You said: <message>": the whole message reached it.
      return d.transcript.some((e) => e.kind === "agent_message" && e.text?.startsWith("You said: m0 m1 m2 "));
    }, 150_000).catch((e: unknown) => {
      const d = last as TaskDetail | null;
      console.log(JSON.stringify({ status: d?.task.status, sessions: d?.sessions, tail: d?.transcript.slice(-6).map((e) => [e.kind, e.text?.slice(0, 80), e.eventIndex]) }));
      throw e;
    });
    const error = await rejection(client.sendMessage(org, { taskId, sessionId: "session-1", text: "y".repeat(MESSAGE_MAX_CHARS + 1) }));
    expect(error.code).toBe("invalid_input");
    expect(error.message).toContain(`message is ${MESSAGE_MAX_CHARS + 1} characters; the limit is ${MESSAGE_MAX_CHARS}`);
  }, 180_000);

  test("realtime events carry a long item cut to the item limit, marked truncated", async () => {
    const seen: TranscriptEvent[] = [];
    let subscribed: () => void = () => {};
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    const sub = client.subscribeTask(org, taskId, {
      onChange: (v) => {
        seen.push(...v.transcript);
        subscribed();
      },
    });
    try {
      await ready;
      await idle(taskId);
      await client.sendMessage(org, { taskId, sessionId: "session-1", text: text(MESSAGE_MAX_CHARS - 10, "r") });
      const echoed = await waitFor("the echo through the subscription", () =>
        seen.find((e) => e.kind === "agent_message" && e.text?.startsWith("You said: r0 r1 ")),
      90_000);
      expect(echoed.truncated).toBe(true);
      expect(echoed.text!.length).toBeLessThan(TRANSCRIPT_ITEM_MAX_CHARS + 200);
      expect(seen.every((e) => (e.text?.length ?? 0) < TRANSCRIPT_ITEM_MAX_CHARS + 200)).toBe(true);
    } finally {
      sub.unsubscribe();
    }
  }, 120_000);

  test("writeFile at the limit round-trips; over it is a typed invalid_input", async () => {
    const content = text(WRITE_FILE_MAX_CHARS, "w");
    await client.writeFile(org, { taskId, path: "big-write.txt", content });
    expect(await client.readFile(org, { taskId, path: "big-write.txt" })).toBe(content);
    const error = await rejection(client.writeFile(org, { taskId, path: "too-big.txt", content: `${content}!` }));
    expect(error.code).toBe("invalid_input");
    expect(error.message).toContain(`the limit is ${WRITE_FILE_MAX_CHARS}`);
  });

  test("code at the limit runs", async () => {
    const code = `// ${"c".repeat(90_000)}\nconsole.log("ran")\n`;
    const result = await client.runCode(org, { taskId, language: "javascript", code });
    expect(result.stdout.trim()).toBe("ran");
  });
});

describe("large outputs", () => {
  test("a 2 MB file: readFile refuses it with a typed error naming the limit; readFileRange pages all of it", async () => {
    const size = 2_000_000;
    const made = await client.exec(org, { taskId, command: `seq 1 400000 | head -c ${size} > big-read.txt && wc -c < big-read.txt` });
    expect(made.stdout.trim()).toBe(String(size));
    const error = await rejection(client.readFile(org, { taskId, path: "big-read.txt" }));
    expect(error.code).toBe("invalid_input");
    expect(error.message).toContain(`limit is ${READ_FILE_MAX_CHARS}`);

    let offset = 0;
    let whole = "";
    for (let pages = 0; pages < 50; pages++) {
      const page = await client.readFileRange(org, { taskId, path: "big-read.txt", offset });
      expect(page.totalChars).toBe(size);
      expect(page.content.length).toBeLessThanOrEqual(READ_FILE_MAX_CHARS);
      whole += page.content;
      offset += page.content.length;
      if (!page.truncated) break;
    }
    expect(whole.length).toBe(size);
    expect(whole.startsWith("1\n2\n3\n")).toBe(true);
    const tail = await client.exec(org, { taskId, command: "tail -c 20 big-read.txt" });
    expect(whole.endsWith(tail.stdout)).toBe(true);
  });

  test("exec printing 1.1 MB returns capped output marked truncated; small output is not marked", async () => {
    const big = await client.exec(org, { taskId, command: "head -c 1100000 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2" });
    expect(big.exitCode).toBe(0);
    expect(big.truncated).toBe(true);
    expect(big.stdout.length).toBeLessThan(EXEC_OUTPUT_MAX_CHARS + 200);
    // (Kept as booleans: a failure must not print a megabyte.)
    expect(big.stdout.endsWith(`showing the first ${EXEC_OUTPUT_MAX_CHARS}]`)).toBe(true);
    expect(big.stderr.includes("[truncated: 300000 characters")).toBe(true);
    const small = await client.exec(org, { taskId, command: "echo hi" });
    expect(small).toMatchObject({ stdout: "hi\n", truncated: false });
  });
});

describe("a task with a very large transcript", () => {
  test("10 000 events / 20 MiB: getTask returns a bounded window, and pages reach back to the first event", async () => {
    const before = await client.getTask(org, taskId);
    const existing = Math.max(...before.transcript.filter((e) => e.sessionId === "session-1").map((e) => e.eventIndex));
    await seedTranscript(raw, org, taskId, "session-1", 10_000, 2_100);
    const total = existing + 10_000;

    const detail = await client.getTask(org, taskId);
    const window = detail.transcript.filter((e) => e.sessionId === "session-1");
    expect(window.length).toBeGreaterThan(0);
    expect(window.length).toBeLessThanOrEqual(TRANSCRIPT_WINDOW_EVENTS);
    expect(window.at(-1)?.eventIndex).toBe(total); // the newest event is in the window
    expect(JSON.stringify(detail).length).toBeLessThan(1_000_000);
    const cursor = detail.transcriptBefore?.["session-1"];
    expect(cursor).toBe(window[0]?.eventIndex);

    // Page back to the start: every event exactly once, in order.
    const seen: TranscriptEvent[] = [...window];
    let next: number | null = cursor ?? null;
    for (let pages = 0; next !== null && pages < 200; pages++) {
      const page = await client.getTranscriptPage(org, { taskId, sessionId: "session-1", before: next });
      expect(page.events.length).toBeGreaterThan(0);
      expect(JSON.stringify(page).length).toBeLessThan(1_000_000);
      expect(page.events.every((e) => e.eventIndex < next!)).toBe(true);
      seen.unshift(...page.events);
      next = page.before;
    }
    expect(next).toBeNull();
    expect(seen.map((e) => e.eventIndex)).toEqual(Array.from({ length: total }, (_, i) => i + 1));

    // A subscription to the big task opens too (its snapshot is the same bounded detail).
    const value = await new Promise<TaskDetail>((resolve, reject) => {
      const sub = client.subscribeTask(org, taskId, {
        onChange: (v) => {
          sub.unsubscribe();
          resolve(v);
        },
        onError: reject,
      });
    });
    expect(value.transcriptBefore?.["session-1"]).toBeGreaterThan(1);
  }, 300_000);

  test("the seeding hook is a test-only action: invalid seeds are refused", async () => {
    const error = (await raw.task
      .get(["org", org, "task", taskId])
      .testSeedTranscript!({ sessionId: "session-1", count: 0, textChars: 1 })
      .then(() => null, (e: unknown) => e)) as { code?: string } | null;
    expect(error?.code).toBe("invalid_input");
  });
});
