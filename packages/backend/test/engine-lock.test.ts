// The engine is locked: its admin REST API (list, create, destroy actors) answers nobody without the
// admin token, on the engine port and through Kiln's port alike; clients reach actors only through
// Kiln's gateway proxy (/v1/rivet), and the normal flow works there. Single-user mode (no sign-in).
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { type KilnClient, createKilnClient } from "@kiln/client";
import { DEFAULT_ORG_ID, type RepoRecord, type TaskDetail } from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Backend, makeGitRepo, startBackend, waitFor } from "./harness.ts";

const org = DEFAULT_ORG_ID;
let backend: Backend;
let client: KilnClient;
let repo: RepoRecord;
let taskId: string;
let actorId: string;

const engine = () => `http://127.0.0.1:${backend.enginePort}`;
const token = () => readFileSync(path.join(backend.dataDir, "engine-admin-token"), "utf8").trim();

/** The engine actor id of a task, found with the admin token (the only way in). */
async function taskActorId(id: string): Promise<string | undefined> {
  const res = await fetch(`${engine()}/actors?namespace=default&name=task`, { headers: { authorization: `Bearer ${token()}` } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { actors: { actor_id: string; key: string }[] };
  return body.actors.find((a) => a.key.includes(id))?.actor_id;
}

beforeAll(async () => {
  backend = await startBackend();
  client = createKilnClient({ endpoint: backend.url });
  repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
  taskId = (await client.createTask(org, { repoId: repo.repoId, prompt: "hello engine lock" })).taskId;
  actorId = (await waitFor("task actor listed", () => taskActorId(taskId)))!;
}, 120_000);

afterAll(async () => {
  await client?.dispose();
  await backend?.destroy();
});

describe("engine lock", () => {
  test("the admin token is kept 0600 in the data dir and never handed to clients", async () => {
    const file = path.join(backend.dataDir, "engine-admin-token");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const config = await (await fetch(`${backend.url}/v1/config`)).text();
    expect(config).not.toContain(token());
    expect(config).not.toContain(`:${backend.enginePort}`);
    expect(JSON.parse(config).rivetEndpoint).toBe(`${backend.url}/v1/rivet`);
  });

  test("anonymous admin calls on the engine port are refused and the task survives", async () => {
    const list = await fetch(`${engine()}/actors?namespace=default&name=task`);
    expect([401, 403]).toContain(list.status);
    expect(await list.text()).not.toContain(taskId);
    const destroy = await fetch(`${engine()}/actors/${actorId}?namespace=default`, { method: "DELETE" });
    expect([401, 403]).toContain(destroy.status);
    const create = await fetch(`${engine()}/actors?namespace=default`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "task", key: "x", runner_name_selector: `test-${backend.enginePort}`, crash_policy: "sleep" }),
    });
    expect([401, 403]).toContain(create.status);
    const wrong = await fetch(`${engine()}/actors?namespace=default&name=task`, { headers: { authorization: "Bearer not-the-token" } });
    expect([401, 403]).toContain(wrong.status);
    expect(await taskActorId(taskId)).toBe(actorId);
    expect((await client.getTask(org, taskId)).task.taskId).toBe(taskId);
  });

  test("the same admin paths through Kiln's port are refused, whatever the spelling", async () => {
    const paths = [
      ["GET", "/v1/rivet/actors?namespace=default&name=task"],
      ["DELETE", `/v1/rivet/actors/${actorId}?namespace=default`],
      ["POST", "/v1/rivet/actors?namespace=default"],
      ["PUT", "/v1/rivet/actors?namespace=default"],
      ["GET", "/v1/rivet/envoys?namespace=default"],
      ["GET", "/v1/rivet/runner-configs?namespace=default"],
      ["GET", "/v1/rivet/gateway/../actors?namespace=default&name=task"],
      ["GET", "/v1/rivet/gateway/%2e%2e/actors?namespace=default&name=task"],
      ["GET", "/v1/rivet/gateway/x/../../actors?namespace=default&name=task"],
      ["DELETE", `/v1/rivet/gateway/..%2factors%2f${actorId}?namespace=default`],
      ["GET", "/v1/rivet/ui/"],
      ["GET", "/actors?namespace=default&name=task"],
      ["DELETE", `/actors/${actorId}?namespace=default`],
    ] as const;
    for (const [method, p] of paths) {
      // fetch would normalise `..`; send the raw path.
      const res = await rawRequest(method, p);
      expect(res.status, `${method} ${p}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${method} ${p}`).toBeLessThan(500);
      expect(res.body, `${method} ${p}`).not.toContain(taskId);
    }
    expect(await taskActorId(taskId)).toBe(actorId);
  });

  test("the normal client flow works through the proxy: create → idle, subscribe", async () => {
    const created = await client.createTask(org, { repoId: repo.repoId, prompt: "through the proxy" });
    const idle = await new Promise<TaskDetail>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("task never became idle")), 90_000);
      const sub = client.subscribeTask(org, created.taskId, {
        onChange: (d) => {
          if (d.task.status === "idle" && d.transcript.some((e) => e.kind === "turn_end")) {
            clearTimeout(timer);
            sub.unsubscribe();
            resolve(d);
          }
        },
        onError: (e) => (clearTimeout(timer), reject(e)),
      });
    });
    expect(idle.transcript.some((e) => e.kind === "agent_message")).toBe(true);
    expect((await client.listTasks(org)).map((t) => t.taskId)).toEqual(expect.arrayContaining([taskId, created.taskId]));
  }, 120_000);
});

/** An HTTP/1.1 request with the path exactly as given (no client-side normalisation). */
async function rawRequest(method: string, rawPath: string): Promise<{ status: number; body: string }> {
  const net = await import("node:net");
  const url = new URL(backend.url);
  return await new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(`${method} ${rawPath} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    });
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => (data += chunk));
    socket.on("error", reject);
    socket.on("end", () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), body: data }));
  });
}
