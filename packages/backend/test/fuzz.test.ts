// Property test: generated malformed input thrown at every public action of every actor (through the
// same /v1/rivet path as @kiln/client) and at every HTTP route. Whatever comes in, the answer is a
// typed 4xx-class error — never a 5xx or an `internal` code — the backend stays alive, and the stored
// state (organization snapshot, task detail) is exactly what it was. Single-user mode: no sign-in, so
// nothing but validation stands between the input and the actors.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type KilnClient, createKilnClient } from "@kiln/client";
import { type RawActorCaller, type RawActorName, createRawActorCaller } from "@kiln/client/raw";
import { DEFAULT_ORG_ID, KilnError, type RepoRecord } from "@kiln/shared";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Backend, makeGitRepo, startBackend, tempDir, waitFor } from "./harness.ts";

const org = DEFAULT_ORG_ID;
const TYPED = new Set(["invalid_input", "not_found", "forbidden", "conflict", "not_ready"]);
let backend: Backend;
let client: KilnClient;
let raw: RawActorCaller;
let repo: RepoRecord;
let taskId: string;

/** Everything the fuzz must not change. Volatile read-side fields (none today) would be dropped here. */
async function storedState(): Promise<string> {
  const snapshot = await client.getOrganization(org);
  const detail = await client.getTask(org, taskId);
  return JSON.stringify({ snapshot, detail });
}

beforeAll(async () => {
  const dist = tempDir("dist");
  mkdirSync(path.join(dist, "assets"));
  writeFileSync(path.join(dist, "index.html"), "<!doctype html><title>kiln</title>");
  writeFileSync(path.join(dist, "assets", "app.js"), "console.log(1)");
  backend = await startBackend({ env: { KILN_FRONTEND_DIST: dist } });
  client = createKilnClient({ endpoint: backend.url });
  raw = await createRawActorCaller({ endpoint: backend.url });
  repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
  taskId = (await client.createTask(org, { repoId: repo.repoId, prompt: "fuzz target" })).taskId;
  await waitFor(
    "task idle",
    async () => {
      const d = await client.getTask(org, taskId);
      const summary = (await client.listTasks(org)).find((t) => t.taskId === taskId);
      return d.task.status === "idle" && d.transcript.some((e) => e.kind === "turn_end") && summary?.status === "idle";
    },
    90_000,
  );
}, 150_000);

afterAll(async () => {
  await raw?.dispose();
  await client?.dispose();
  await backend?.destroy();
});

// ---- malformed values --------------------------------------------------------------------------------

const notAString = fc.oneof(fc.constant(null), fc.integer(), fc.boolean(), fc.constant([]), fc.constant({}), fc.double());
const badId = fc.oneof(
  notAString,
  fc.constantFrom("", "..", ".", "../x", "a/b", "%", "%2e%2e", "a b", "\u0000", "é", "x".repeat(200), "-lead", "org/default"),
  fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s)),
);
const badText = fc.oneof(notAString, fc.constantFrom("", "   "));
/** Shell input: whitespace is a (no-op) command, not malformed. */
const badCommand = fc.oneof(notAString, fc.constant(""));
const badEnum = fc.oneof(notAString, fc.constantFrom("", "nope", "MOCK"));
const badBool = fc.oneof(fc.constant(null), fc.integer(), fc.constantFrom("true", "", []));
const badNumber = fc.oneof(fc.constant(null), fc.constantFrom("100", -1, 1.5, 1e12, Number.NaN));
const badPath = fc.oneof(notAString, fc.constantFrom("", "../etc/passwd", "a/../../b", "x".repeat(5000)));

type Field = fc.Arbitrary<unknown>;
/** A valid-looking input and, per field, what a malformed value of it is. */
interface Shape {
  valid: () => Record<string, unknown>;
  bad: Record<string, Field>;
  /** The action takes null as a real value (setPullRequest: no pull request). */
  nullable?: boolean;
}

const own = () => ({ taskId });
const ORG_SHAPES: Record<string, Shape> = {
  addRepo: {
    valid: () => ({ remoteUrl: "/tmp/does-not-exist", name: "n", defaultBranch: "main", defaultProvider: "local", defaultAgent: "mock" }),
    bad: { remoteUrl: fc.oneof(badText, fc.constantFrom("relative/path", "ftp://x", "javascript:alert(1)")), name: badText, defaultBranch: fc.oneof(badText, fc.constantFrom("..", "a..b", "-x", "a b")), defaultProvider: badEnum, defaultAgent: badEnum },
  },
  createTask: {
    valid: () => ({ repoId: repo.repoId, prompt: "p", baseBranch: "main", branch: "b", title: "t", agent: "mock", provider: "local" }),
    bad: { repoId: badId, prompt: badText, baseBranch: fc.oneof(badText, fc.constantFrom("..", "a..b")), branch: fc.oneof(badText, fc.constantFrom("..", "-x")), title: badText, agent: badEnum, provider: badEnum },
  },
  reserveBranch: { valid: () => ({ taskId, repoId: repo.repoId, title: "t" }), bad: { taskId: badId, repoId: badId, title: notAString } },
  applyTaskSummary: { valid: () => ({ taskId, orgId: org, status: "idle" }), bad: { taskId: badId, orgId: badId, status: badEnum } },
  destroyAllSandboxes: { valid: () => ({ keptOnly: true }), bad: { keptOnly: badBool } },
  addGitHubRepo: { valid: () => ({ fullName: "o/r" }), bad: { fullName: fc.oneof(badText, fc.constantFrom("noslash", "a/b/c", "../x")) } },
  taskForBranch: { valid: () => ({ repoId: repo.repoId, branch: "b" }), bad: { repoId: badId, branch: badText } },
};
const TASK_SHAPES: Record<string, Shape> = {
  retry: { valid: own, bad: { taskId: badId } },
  sendMessage: { valid: () => ({ taskId, sessionId: "session-1", text: "hi" }), bad: { taskId: badId, sessionId: badId, text: badText } },
  answerPermission: { valid: () => ({ taskId, sessionId: "session-1", permissionId: "p", reply: "once" }), bad: { taskId: badId, sessionId: badId, permissionId: badText, reply: badEnum } },
  createSession: { valid: () => ({ taskId, agent: "mock", title: "t" }), bad: { taskId: badId, agent: badEnum, title: badText } },
  stopSession: { valid: () => ({ taskId, sessionId: "session-1" }), bad: { taskId: badId, sessionId: badId } },
  closeSession: { valid: () => ({ taskId, sessionId: "session-1" }), bad: { taskId: badId, sessionId: badId } },
  renameSession: { valid: () => ({ taskId, sessionId: "session-1", title: "t" }), bad: { taskId: badId, sessionId: badId, title: badText } },
  archive: { valid: () => ({ taskId, keepSandbox: false }), bad: { taskId: badId, keepSandbox: badBool } },
  kill: { valid: own, bad: { taskId: badId } },
  destroySandbox: { valid: own, bad: { taskId: badId } },
  getFileDiff: { valid: () => ({ taskId, path: "README.md" }), bad: { taskId: badId, path: notAString } },
  exec: { valid: () => ({ taskId, command: "true", timeoutMs: 1000 }), bad: { taskId: badId, command: badCommand, timeoutMs: badNumber } },
  runCode: { valid: () => ({ taskId, language: "bash", code: "true" }), bad: { taskId: badId, language: badEnum, code: badCommand } },
  readFile: { valid: () => ({ taskId, path: "README.md" }), bad: { taskId: badId, path: badPath } },
  writeFile: { valid: () => ({ taskId, path: "x.txt", content: "x" }), bad: { taskId: badId, path: badPath, content: notAString } },
  pushBranch: { valid: () => ({ taskId, message: "m" }), bad: { taskId: badId, message: badText } },
  openPullRequest: { valid: () => ({ taskId, title: "t", draft: false }), bad: { taskId: badId, title: badText, draft: badBool } },
  setPullRequest: { valid: () => ({ number: 1, url: "https://x", state: "open" }), bad: { number: badNumber, url: notAString, state: badEnum }, nullable: true },
  archiveBecause: { valid: () => ({}), bad: {} }, // takes a bare string: see barePrimitive below
  initialize: { valid: () => ({ taskId, repoId: repo.repoId, prompt: "p" }), bad: { taskId: badId, repoId: badId, prompt: badText } },
};
const GITHUB_SHAPES: Record<string, Shape> = {
  resolveRepo: { valid: () => ({ remoteUrl: "https://github.com/o/r" }), bad: { remoteUrl: badText } },
  receiveWebhook: { valid: () => ({ event: "ping", deliveryId: "d", payload: {} }), bad: { event: badText, deliveryId: badText, payload: notAString } },
  openPullRequest: { valid: () => ({ taskId, repoId: repo.repoId }), bad: { taskId: badId, repoId: badId } },
};

/** An input of `shape` with at least one field malformed, or a non-object in its place. */
function malformed(shape: Shape): fc.Arbitrary<unknown> {
  const barePrimitive = fc.oneof(fc.constant(shape.nullable ? 0 : null), fc.integer(), fc.constantFrom("", "x".repeat(2000), true), fc.constant([1, 2]));
  const fields = Object.keys(shape.bad);
  if (fields.length === 0) return barePrimitive;
  const oneBadField = fc
    .record({ field: fc.constantFrom(...fields), seed: fc.nat() })
    .chain(({ field }) => shape.bad[field]!.map((value) => ({ ...shape.valid(), [field]: value })));
  return fc.oneof({ weight: 4, arbitrary: oneBadField }, { weight: 1, arbitrary: barePrimitive });
}

interface Target {
  actor: RawActorName;
  key: () => unknown[];
  action: string;
}
const targets: Target[] = [
  ...Object.keys(ORG_SHAPES).map((action) => ({ actor: "organization" as const, key: () => ["org", org], action })),
  ...Object.keys(TASK_SHAPES).map((action) => ({ actor: "task" as const, key: () => ["org", org, "task", taskId], action })),
  ...Object.keys(GITHUB_SHAPES).map((action) => ({ actor: "githubState" as const, key: () => ["org", org, "github"], action })),
];
const shapeOf = (t: Target) => (t.actor === "organization" ? ORG_SHAPES : t.actor === "task" ? TASK_SHAPES : GITHUB_SHAPES)[t.action]!;

/** Every action of every actor, including the no-input ones, for the malformed-key property. */
const ALL_ACTIONS: Record<RawActorName, string[]> = {
  organization: [...Object.keys(ORG_SHAPES), "listRepos", "watchTasks", "listTasks", "getSnapshot", "listLiveTaskIds", "listSandboxes", "listGitHubRepos"],
  task: [...Object.keys(TASK_SHAPES), "watchdog", "getDetail", "getSummary", "getChanges", "getSandbox"],
  githubState: [...Object.keys(GITHUB_SHAPES), "getSnapshot", "sync", "listRepos"],
  maintenance: ["arm", "reap"],
};
// Key parts travel as strings (`rvt-key=org,<id>`), so only strings stay malformed on the wire.
const badKeyId = fc.oneof(
  fc.constantFrom("", "..", ".", "../x", "a/b", "%", "%2e%2e", "a b", "\u0000", "é", "x".repeat(200), "-lead", "_x"),
  fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s) && !s.includes(",")),
);
const badKey = (actor: RawActorName): fc.Arbitrary<unknown[]> => {
  switch (actor) {
    case "organization":
      return badKeyId.map((o) => ["org", o]);
    case "task":
      return fc.oneof(badKeyId.map((o) => ["org", o, "task", "t1"]), badKeyId.map((t) => ["org", org, "task", t]));
    case "githubState":
      return badKeyId.map((o) => ["org", o, "github"]);
    case "maintenance":
      return badKeyId.map((o) => ["org", o, "maintenance"]);
  }
};

async function expectTyped(what: string, work: Promise<unknown>): Promise<void> {
  const outcome = await work.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`${what}: malformed input was accepted (returned ${JSON.stringify(outcome.value)?.slice(0, 200)})`);
  const error = outcome.error;
  if (!(error instanceof KilnError) || !TYPED.has(error.code)) {
    throw new Error(`${what}: untyped failure ${error instanceof KilnError ? error.code : ""}: ${String((error as Error)?.message ?? error).slice(0, 300)}`);
  }
}

const describeInput = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "string" && x.length > 40 ? `${x.slice(0, 40)}…(${x.length})` : x));

describe("fuzz: malformed input is refused, typed, and changes nothing", () => {
  test("every action with an input, on a real org and task: malformed arguments", async () => {
    const before = await storedState();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...targets).chain((t) => malformed(shapeOf(t)).map((input) => ({ t, input }))),
        async ({ t, input }) => {
          await expectTyped(`${t.actor}.${t.action}(${describeInput(input)})`, raw.call(t.actor, t.key(), t.action, [input]));
        },
      ),
      { numRuns: 180, endOnFailure: true },
    );
    expect((await fetch(`${backend.url}/healthz`)).status).toBe(200);
    expect(await storedState()).toBe(before);
  }, 180_000);

  test("every action of every actor: a malformed org or task id in the actor key", async () => {
    const before = await storedState();
    const actors = Object.keys(ALL_ACTIONS) as RawActorName[];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...actors).chain((actor) =>
          fc.record({ actor: fc.constant(actor), action: fc.constantFrom(...ALL_ACTIONS[actor]), key: badKey(actor), input: fc.anything({ maxDepth: 2 }) }),
        ),
        async ({ actor, action, key, input }) => {
          await expectTyped(`${actor}${describeInput(key)}.${action}`, raw.call(actor, key, action, [input]));
        },
      ),
      { numRuns: 100, endOnFailure: true },
    );
    expect((await fetch(`${backend.url}/healthz`)).status).toBe(200);
    expect(await storedState()).toBe(before);
  }, 180_000);

  test("every HTTP route: malformed paths, methods and bodies get a 4xx", async () => {
    const before = await storedState();
    const routes = ["/healthz", "/v1/config", "/v1/auth/me", "/v1/auth/github/login", "/v1/auth/github/callback", "/v1/auth/logout", "/v1/webhooks/github", "/v1/webhooks/actions", "/v1/rivet/gateway/organization", "/v1/rivet/actors", "/", "/assets/app.js"];
    const suffix = fc.constantFrom("", "%", "/%", "%zz", "/%E0%A4%A", "?%", "/..%2f..%2fetc%2fpasswd", "/%00", "?a=%", "/x%");
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          route: fc.constantFrom(...routes),
          suffix,
          method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
          body: fc.oneof(fc.constant(""), fc.constant("{"), fc.constant("null"), fc.json(), fc.constant("%")),
          contentType: fc.constantFrom("application/json", "text/plain", "application/x-www-form-urlencoded"),
        }),
        async ({ route, suffix, method, body, contentType }) => {
          const res = await rawHttp(method, `${route}${suffix}`, body, contentType);
          if (res.status >= 500 || res.status === 0) throw new Error(`${method} ${route}${suffix} → ${res.status}: ${res.body.slice(0, 300)}`);
          if (res.body.includes('"internal"')) throw new Error(`${method} ${route}${suffix}: internal error code`);
        },
      ),
      { numRuns: 120, endOnFailure: true },
    );
    expect((await fetch(`${backend.url}/healthz`)).status).toBe(200);
    expect(await storedState()).toBe(before);
  }, 180_000);
});

/** One raw HTTP/1.1 request, path and body sent exactly as given. */
async function rawHttp(method: string, rawPath: string, body: string, contentType: string): Promise<{ status: number; body: string }> {
  const net = await import("node:net");
  const url = new URL(backend.url);
  const bytes = Buffer.from(body);
  return await new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(`${method} ${rawPath} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\ncontent-type: ${contentType}\r\ncontent-length: ${bytes.length}\r\n\r\n`);
      socket.write(bytes);
    });
    let data = "";
    socket.setTimeout(30_000, () => socket.destroy(new Error(`${method} ${rawPath}: no answer in 30 s`)));
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => (data += chunk));
    socket.on("error", reject);
    socket.on("end", () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), body: data }));
  });
}
