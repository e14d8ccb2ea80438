// A subscription survives a full restart (backend and engine) of a real backend: it reconnects,
// resyncs from a snapshot, and ends up equal to a fresh read, with no event lost or applied twice.
import { DEFAULT_ORG_ID, type TaskDetail } from "@kiln/shared";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type Backend, makeGitRepo, startBackend } from "../../backend/test/harness.ts";
import { type KilnClient, createKilnClient } from "../src/index.ts";
import { follow } from "./follow.ts";

const org = DEFAULT_ORG_ID;
let backend: Backend;
let client: KilnClient;

beforeAll(async () => {
  backend = await startBackend();
  client = createKilnClient({ endpoint: backend.url });
}, 90_000);

afterAll(async () => {
  await client?.dispose();
  await backend?.destroy();
});

test("a subscription keeps working across a backend restart, with no lost or duplicate events", async () => {
  const repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
  const task = await client.createTask(org, { repoId: repo.repoId, prompt: "before restart" });
  await follow(client, task.taskId, 60_000);

  const seen: TaskDetail[] = [];
  const states: string[] = [];
  const sub = client.subscribeTask(org, task.taskId, {
    onChange: (d) => seen.push(d),
    onConnectionChange: (s) => states.push(s),
  });
  await expect.poll(() => seen.length, { timeout: 20_000 }).toBeGreaterThan(0);

  // A full restart: backend and engine, so the client's connection drops and must resync.
  const { dataDir, enginePort } = backend;
  await backend.stop();
  backend.killEngine();
  const port = Number(new URL(backend.url).port);
  backend = await startBackend({ dataDir, enginePort, port });

  await client.sendMessage(org, { taskId: task.taskId, sessionId: "session-1", text: "after restart" });
  await expect
    .poll(
      () =>
        seen
          .at(-1)
          ?.transcript.filter((e) => e.kind === "agent_message")
          .map((e) => e.text)
          .join("")
          .includes("after restart") && seen.at(-1)?.task.status === "idle",
      // After an engine kill the engine first declares the old runner lost (~30 s here) before actors
      // accept connections again; the subscription must ride that out and resync.
      { timeout: 120_000, interval: 200 },
    )
    .toBe(true);
  sub.unsubscribe();

  // The subscribed view equals a fresh read: nothing lost, nothing applied twice.
  const fresh = await client.getTask(org, task.taskId);
  const last = seen.at(-1)!;
  expect(last.transcript).toEqual(fresh.transcript);
  expect(last.history).toEqual(fresh.history);
  const keys = last.transcript.map((e) => `${e.sessionId}#${e.eventIndex}`);
  expect(new Set(keys).size).toBe(keys.length);
  expect(states).toContain("reconnecting");
}, 300_000);
