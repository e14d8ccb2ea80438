// DaytonaProvider on the real SDK against the loopback fake: idempotent create-or-get, start (not
// recreate) of stopped sandboxes, token-safe clone and push, reaper, error mapping, and a real daemon reached
// through the preview link — down to one real agent turn with Kiln's scripted agent.
import { Daytona, Image } from "@daytonaio/sdk";
import { KilnError } from "@kiln/shared";
import { SandboxAgent } from "sandbox-agent";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DaytonaProvider, type DaytonaProviderOptions } from "../../src/providers/daytona/provider.ts";
import type { SandboxHandle, SandboxSpec, StepContext } from "../../src/providers/types.ts";
import { FakeDaytona } from "./fake-daytona.ts";
import { type GitHttpServer, SANDBOX_AGENT_BIN, freePort, git, makeRemoteRepo, startGitHttp, withTimeout } from "./helpers.ts";

const API_KEY = "provider-test-key";
const SNAPSHOT = "kiln-sandbox:test";
const GIT_USER = "x-access-token";
const GIT_TOKEN = "ghs_provider_secret_token_123";

let fake: FakeDaytona;
let repo: Awaited<ReturnType<typeof makeRemoteRepo>>;
let gitServer: GitHttpServer;
let provider: DaytonaProvider;
let remoteUrl: string;
let daemonPort: number;
const providers: DaytonaProvider[] = [];

function makeProvider(overrides: Partial<DaytonaProviderOptions> = {}): DaytonaProvider {
  const p = new DaytonaProvider({
    apiKey: API_KEY,
    apiUrl: fake.apiUrl,
    target: "us",
    snapshotName: SNAPSHOT,
    autoStopMinutes: 30,
    createMode: "api",
    useDeprecatedPolling: true,
    createTimeoutSec: 30,
    daemonHealthTimeoutMs: 20_000,
    daemonPort,
    gitCredentials: async () => ({ username: GIT_USER, password: GIT_TOKEN }),
    log: () => undefined,
    ...overrides,
  });
  providers.push(p);
  return p;
}

function ctx(lines: string[] = [], signal = AbortSignal.timeout(60_000)): StepContext {
  return { signal, progress: (line) => lines.push(line) };
}

function spec(taskId: string, branch = `kiln/task-${taskId}`): SandboxSpec {
  return {
    name: `task-${taskId}`,
    repo: { remoteUrl, baseBranch: "main", branch },
    labels: { org: "default", task: taskId },
    env: { ANTHROPIC_API_KEY: "sk-ant-test-not-real" },
  };
}

beforeAll(async () => {
  fake = await FakeDaytona.start({ apiKey: API_KEY, snapshots: [SNAPSHOT], sandboxAgentBin: SANDBOX_AGENT_BIN });
  repo = await makeRemoteRepo();
  gitServer = await startGitHttp(repo.dir, GIT_USER, GIT_TOKEN);
  remoteUrl = `${gitServer.url}/repo.git`;
  daemonPort = await freePort();
  provider = makeProvider();
});

afterAll(async () => {
  for (const p of providers) await p.close();
  await fake?.close();
  await gitServer?.close();
  await repo?.cleanup();
});

describe("createOrGet", () => {
  it("creates once, then returns the same sandbox (replayed step makes no second sandbox)", async () => {
    const lines: string[] = [];
    const first = await provider.createOrGet(spec("one"), ctx(lines));
    expect(first).toMatchObject({ provider: "daytona", name: "task-one", state: "running" });
    expect(first.labels).toMatchObject({ app: "kiln", org: "default", task: "one" });
    expect(first.workdir).toMatch(/\/repo$/);
    expect(lines.join("\n")).toContain(`creating sandbox task-one from snapshot ${SNAPSHOT}`);

    const second = await provider.createOrGet(spec("one"), ctx());
    expect(second.sandboxId).toBe(first.sandboxId);
    expect(fake.count("POST /api/sandbox")).toBe(1);
    // A fresh provider (backend restart) finds it by name too.
    const third = await makeProvider().createOrGet(spec("one"), ctx());
    expect(third.sandboxId).toBe(first.sandboxId);
    expect(fake.count("POST /api/sandbox")).toBe(1);
    // Live task: auto-stop disabled.
    expect(fake.byName("task-one")?.autoStopInterval).toBe(0);
  });

  it("checks out the task branch with the token only on the wire, never in config, URL or API bodies", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    const branch = await provider.exec(handle, "git rev-parse --abbrev-ref HEAD");
    expect(branch).toMatchObject({ exitCode: 0, stdout: "kiln/task-one\n" });
    const remote = await provider.exec(handle, "git remote get-url origin");
    expect(remote.stdout.trim()).toBe(remoteUrl);
    const config = await provider.readFile(handle, ".git/config");
    expect(config).not.toContain(GIT_TOKEN);
    expect(config).not.toContain(Buffer.from(`${GIT_USER}:${GIT_TOKEN}`).toString("base64"));
    // The git server really required the header (so the token did travel, as a header).
    expect(gitServer.authHeaders).toContain(`Basic ${Buffer.from(`${GIT_USER}:${GIT_TOKEN}`).toString("base64")}`);
    // Not in any command text or JSON body sent to the Daytona API either.
    const b64 = Buffer.from(`${GIT_USER}:${GIT_TOKEN}`).toString("base64");
    expect(fake.jsonBodies.filter((b) => b.includes(GIT_TOKEN) || b.includes(b64))).toEqual([]);
    // No leftovers of the credential file in the sandbox.
    const left = await provider.exec(handle, "ls -A ~/.kiln 2>/dev/null | grep -c git-auth || true");
    expect(left.stdout.trim()).toBe("0");
  });

  it("checks out an existing remote branch instead of recreating it", async () => {
    const handle = await provider.createOrGet(spec("existing", "kiln/existing"), ctx());
    const r = await provider.exec(handle, "git rev-parse --abbrev-ref HEAD && git rev-parse --abbrev-ref --symbolic-full-name @{u}");
    expect(r.stdout).toBe("kiln/existing\norigin/kiln/existing\n");
  });

  it("fails clearly when the clone is refused (bad token), without leaking it", async () => {
    const p = makeProvider({ gitCredentials: async () => ({ username: GIT_USER, password: "wrong-token-xyz" }) });
    const error = await p.createOrGet(spec("badclone"), ctx()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe("unavailable");
    expect((error as KilnError).message).toMatch(/git clone .* failed/);
    expect((error as KilnError).message).not.toContain("wrong-token-xyz");
  });

  it("clones with the task's own access token (spec.repo.accessToken) when given", async () => {
    const p = makeProvider({ gitCredentials: async () => ({ username: GIT_USER, password: "wrong-token-xyz" }) });
    const s = spec("tasktoken");
    let asked = 0;
    s.repo.accessToken = async () => {
      asked++;
      return GIT_TOKEN;
    };
    const handle = await p.createOrGet(s, ctx());
    expect(asked).toBe(1);
    expect((await p.exec(handle, "git rev-parse --abbrev-ref HEAD")).stdout).toBe("kiln/task-tasktoken\n");
    expect(await p.readFile(handle, ".git/config")).not.toContain(GIT_TOKEN);
  });

  it("concurrent replays of the same step converge on one sandbox and one checkout", async () => {
    const creates = fake.count("POST /api/sandbox");
    const [a, b] = await Promise.all([provider.createOrGet(spec("race"), ctx()), makeProvider().createOrGet(spec("race"), ctx())]);
    expect(a.sandboxId).toBe(b.sandboxId);
    const sandboxes = [...fake.sandboxes.values()].filter((s) => s.name === "task-race");
    expect(sandboxes).toHaveLength(1);
    expect(fake.count("POST /api/sandbox") - creates).toBeLessThanOrEqual(2); // the loser got 409
    const r = await provider.exec(a, "git rev-parse --abbrev-ref HEAD && ls -d ../repo.partial-* 2>/dev/null | wc -l");
    expect(r.stdout).toBe("kiln/task-race\n0\n");
  });

  it("reports a missing base branch clearly", async () => {
    const s = spec("nobase");
    s.repo.baseBranch = "does-not-exist";
    await expect(provider.createOrGet(s, ctx())).rejects.toThrow(/base branch does-not-exist not found on the remote/);
  });

  it("starts a stopped sandbox instead of recreating it", async () => {
    const before = await provider.createOrGet(spec("one"), ctx());
    await fake.forceStop("task-one"); // Daytona auto-stop / operator
    expect((await provider.get("task-one"))?.state).toBe("stopped");
    const starts = fake.count("POST /api/sandbox/{id}/start");
    const lines: string[] = [];
    const after = await provider.createOrGet(spec("one"), ctx(lines));
    expect(after.sandboxId).toBe(before.sandboxId);
    expect(after.state).toBe("running");
    expect(fake.count("POST /api/sandbox")).toBeGreaterThanOrEqual(1);
    expect(fake.count("POST /api/sandbox/{id}/start")).toBe(starts + 1);
    expect(lines.join("\n")).toContain("starting stopped sandbox task-one");
    // Using a stopped sandbox (exec) also starts it.
    await fake.forceStop("task-one");
    const r = await provider.exec(after, "cat README.md");
    expect(r.stdout).toBe("# fixture\n");
    expect(fake.count("POST /api/sandbox/{id}/start")).toBe(starts + 2);
  });

  it("release re-enables auto-stop; a new createOrGet disables it again", async () => {
    await provider.release("task-one");
    expect(fake.byName("task-one")?.autoStopInterval).toBe(30);
    await provider.createOrGet(spec("one"), ctx());
    expect(fake.byName("task-one")?.autoStopInterval).toBe(0);
  });
});

describe("pushBranch", () => {
  const branch = "kiln/task-push";
  const basicOf = (token: string) => Buffer.from(`${GIT_USER}:${token}`).toString("base64");
  const remoteSha = async () => (await git(["rev-parse", `refs/heads/${branch}`], repo.bare)).trim();
  const commitInSandbox = async (handle: SandboxHandle, file: string, message: string) => {
    const r = await provider.exec(
      handle,
      `echo ${message} > ${file} && git add ${file} && git -c user.name=Kiln -c user.email=kiln@example.invalid commit -q -m ${message} && git rev-parse HEAD`,
    );
    expect(r).toMatchObject({ exitCode: 0 });
    return r.stdout.trim();
  };
  const leftoverAuthFiles = async (handle: SandboxHandle) =>
    (await provider.exec(handle, "ls -A ~/.kiln 2>/dev/null | grep -c git-auth || true")).stdout.trim();

  afterAll(async () => {
    await provider.destroy("task-push");
  });

  it("pushes a commit made in the sandbox to the remote, with a freshly minted token only on the wire", async () => {
    const handle = await provider.createOrGet(spec("push"), ctx());
    const local = await commitInSandbox(handle, "pushed.txt", "from-daytona");
    const seen = gitServer.authHeaders.length;
    const bodies = fake.jsonBodies.length;
    let minted = 0;
    const { sha } = await provider.pushBranch(handle, {
      remoteUrl,
      branch,
      accessToken: async () => {
        minted++;
        return GIT_TOKEN;
      },
      timeoutMs: 60_000,
    });
    expect(minted).toBe(1);
    expect(sha).toBe(local);
    // The branch really arrived at the (token-checking) git server, at that commit.
    expect(await remoteSha()).toBe(sha);
    expect(await git(["show", `${sha}:pushed.txt`], repo.bare)).toBe("from-daytona\n");
    expect(gitServer.authHeaders.slice(seen)).toContain(`Basic ${basicOf(GIT_TOKEN)}`);
    // Pushed to the URL, not via a credentialed remote: the checkout's config is untouched.
    const config = await provider.readFile(handle, ".git/config");
    expect(config).not.toContain(GIT_TOKEN);
    expect(config).not.toContain(basicOf(GIT_TOKEN));
    expect(config.toLowerCase()).not.toContain("extraheader");
    // Not in any command text / JSON body the Daytona API saw, and no credential file left behind.
    expect(fake.jsonBodies.slice(bodies).filter((b) => b.includes(GIT_TOKEN) || b.includes(basicOf(GIT_TOKEN)))).toEqual([]);
    expect(await leftoverAuthFiles(handle)).toBe("0");
  });

  it("a refused push (wrong token) fails clearly, leaves the remote alone and does not leak the token", async () => {
    const handle = await provider.createOrGet(spec("push"), ctx());
    const before = await remoteSha();
    await commitInSandbox(handle, "second.txt", "second");
    const bad = "ghs_wrong_push_token_456";
    const error = await provider.pushBranch(handle, { remoteUrl, branch, accessToken: async () => bad }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KilnError);
    const { code, message } = error as KilnError;
    expect(code).toBe("unavailable");
    expect(message).toMatch(/^git push of kiln\/task-push to http:\/\/127\.0\.0\.1:\d+\/repo\.git from sandbox task-push failed \(exit \d+\): /);
    expect(message).toMatch(/Authentication failed|could not read Username/);
    expect(message).not.toContain(bad);
    expect(message).not.toContain(basicOf(bad));
    expect(await remoteSha()).toBe(before);
    expect(await leftoverAuthFiles(handle)).toBe("0");
  });

  it("does not force: a branch that diverged from the remote is rejected, like the local provider", async () => {
    const handle = await provider.createOrGet(spec("push"), ctx());
    const before = await remoteSha();
    // Rewrite the sandbox branch so it no longer contains the remote's tip.
    expect((await provider.exec(handle, "git reset -q --hard HEAD~2")).exitCode).toBe(0);
    await commitInSandbox(handle, "rewritten.txt", "rewritten");
    await expect(provider.pushBranch(handle, { remoteUrl, branch, accessToken: async () => GIT_TOKEN })).rejects.toThrow(
      /git push of kiln\/task-push .* failed .*(rejected|non-fast-forward)/s,
    );
    expect(await remoteSha()).toBe(before);
  });
});

describe("toolbox", () => {
  it("exec separates stdout/stderr, keeps the exit code and honours cwd", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    const r = await provider.exec(handle, `echo "it's out"; echo 'to err' >&2; exit 7`);
    expect(r).toMatchObject({ exitCode: 7, stdout: "it's out\n", stderr: "to err\n" });
    await provider.writeFile(handle, "sub/dir/note.txt", "héllo\n");
    expect(await provider.readFile(handle, "sub/dir/note.txt")).toBe("héllo\n");
    const inSub = await provider.exec(handle, "cat note.txt", { cwd: "sub/dir" });
    expect(inSub.stdout).toBe("héllo\n");
  });

  it("maps a missing file to not_found", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    await expect(provider.readFile(handle, "nope.txt")).rejects.toMatchObject({ code: "not_found" });
  });

  it("maps a command timeout to timeout", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    await expect(provider.exec(handle, "sleep 5", { timeoutMs: 1000 })).rejects.toMatchObject({ code: "timeout" });
  });
});

describe("ensureDaemon", () => {
  it("returns a reachable, token-protected endpoint and reuses a healthy daemon", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    const token = "daemon-token-abc123";
    const lines: string[] = [];
    const endpoint = await provider.ensureDaemon(handle, { agent: "mock", token, env: { OPENAI_API_KEY: "sk-test-not-real" } }, ctx(lines));
    expect(endpoint.token).toBe(token);
    expect(endpoint.headers["x-daytona-preview-token"]).toBeTruthy();
    const health = (headers: Record<string, string>) =>
      fetch(`${endpoint.baseUrl}/v1/health`, { headers, signal: AbortSignal.timeout(5000) }).then((r) => r.status);
    expect(await health({ ...endpoint.headers, authorization: `Bearer ${token}` })).toBe(200);
    expect(await health({ ...endpoint.headers })).toBe(401);
    expect(await health({ authorization: `Bearer ${token}` })).toBe(401);
    expect(lines.join("\n")).toContain("sandbox-agent daemon healthy");

    const execs = fake.count("POST /toolbox/{id}/process/session/{sessionId}/exec");
    const again = await provider.ensureDaemon(handle, { agent: "mock", token, env: {} }, ctx());
    expect(again.baseUrl).toBe(endpoint.baseUrl);
    expect(fake.count("POST /toolbox/{id}/process/session/{sessionId}/exec")).toBe(execs);
    // Secrets never went through the API as command text or JSON (they travel as an uploaded file).
    expect(fake.jsonBodies.filter((b) => b.includes(token) || b.includes("sk-test-not-real"))).toEqual([]);
  });

  it("restarts a daemon that runs with another token", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    const endpoint = await provider.ensureDaemon(handle, { agent: "mock", token: "rotated-token-456", env: {} }, ctx());
    const r = await fetch(`${endpoint.baseUrl}/v1/health`, {
      headers: { ...endpoint.headers, authorization: "Bearer rotated-token-456" },
      signal: AbortSignal.timeout(5000),
    });
    expect(r.status).toBe(200);
  });

  it("runs a real agent turn through the preview link (scripted agent writes into the checkout)", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    const endpoint = await provider.ensureDaemon(handle, { agent: "mock", token: "turn-token-789", env: {} }, ctx());
    const sdk = await SandboxAgent.connect({
      baseUrl: endpoint.baseUrl,
      token: endpoint.token,
      headers: endpoint.headers,
      signal: AbortSignal.timeout(20_000),
    });
    try {
      const session = await sdk.createSession({ agent: "mock", cwd: handle.workdir });
      const result = await withTimeout(session.prompt([{ type: "text", text: "write from-agent.txt made in daytona" }]), 20_000, "prompt");
      expect(result.stopReason).toBe("end_turn");
      expect(await provider.readFile(handle, "from-agent.txt")).toBe("made in daytona\n");
    } finally {
      await sdk.dispose();
    }
  });

  it("wakes a stopped sandbox and restarts the daemon (new preview token)", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    const first = await provider.ensureDaemon(handle, { agent: "mock", token: "turn-token-789", env: {} }, ctx());
    await fake.forceStop("task-one");
    const second = await provider.ensureDaemon(handle, { agent: "mock", token: "turn-token-789", env: {} }, ctx());
    expect(second.headers["x-daytona-preview-token"]).not.toBe(first.headers["x-daytona-preview-token"]);
    const r = await fetch(`${second.baseUrl}/v1/health`, {
      headers: { ...second.headers, authorization: "Bearer turn-token-789" },
      signal: AbortSignal.timeout(5000),
    });
    expect(r.status).toBe(200);
  });

  it("fails fast with the daemon's log when the daemon exits (port taken)", async () => {
    const port = await freePort();
    const p = makeProvider({ daemonPort: port, daemonHealthTimeoutMs: 15_000 });
    const handle = await p.createOrGet(spec("one"), ctx());
    // Occupy the daemon's port inside the sandbox with something that is not sandbox-agent.
    const sdk = new Daytona({ apiKey: API_KEY, apiUrl: fake.apiUrl, useDeprecatedPolling: true });
    try {
      const sandbox = await sdk.get(handle.sandboxId);
      await sandbox.process.createSession("squatter");
      await sandbox.process.executeSessionCommand("squatter", {
        command: `exec node -e "require('http').createServer((q, s) => { s.statusCode = 503; s.end() }).listen(${port}, process.env.DAYTONA_FAKE_SANDBOX_IP)"`,
        runAsync: true,
      });
      const started = Date.now();
      const error = await p.ensureDaemon(handle, { agent: "mock", token: "squat-token-000", env: {} }, ctx()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(KilnError);
      expect((error as KilnError).code).toBe("unavailable");
      expect((error as KilnError).message).toMatch(/sandbox-agent exited \(code [1-9]\d*\) before becoming healthy/);
      expect((error as KilnError).message).not.toContain("squat-token-000");
      expect((error as KilnError).message).toContain("Address in use");
      expect(Date.now() - started).toBeLessThan(10_000);
      await sandbox.process.deleteSession("squatter");
    } finally {
      await sdk[Symbol.asyncDispose]();
    }
  });

  it("fails with not_ready when the agent is not installed in the snapshot", async () => {
    const handle = await provider.createOrGet(spec("one"), ctx());
    await expect(provider.ensureDaemon(handle, { agent: "amp", token: "turn-token-789", env: {} }, ctx())).rejects.toMatchObject({
      code: "not_ready",
    });
  });
});

describe("reaper, destroy, list", () => {
  it("deletes only app=kiln sandboxes whose task is not live", async () => {
    await provider.createOrGet(spec("live"), ctx());
    await provider.createOrGet(spec("orphan"), ctx());
    // Someone else's sandbox in the same org, and one of ours without a task label.
    const other = new Daytona({ apiKey: API_KEY, apiUrl: fake.apiUrl, useDeprecatedPolling: true });
    try {
      await other.create({ name: "not-kiln", snapshot: SNAPSHOT, labels: { app: "other", task: "orphan" } }, { timeout: 30 });
      await other.create({ name: "kiln-untasked", snapshot: SNAPSHOT, labels: { app: "kiln" } }, { timeout: 30 });
    } finally {
      await other[Symbol.asyncDispose]();
    }
    const liveIds = ["one", "existing", "live", "badclone", "tasktoken", "race", "nobase"];
    const deleted = await provider.reapOrphans(async () => liveIds);
    expect(deleted.sort()).toEqual(["task-orphan"]);
    expect(await provider.get("task-orphan")).toBeNull();
    expect(await provider.get("task-live")).not.toBeNull();
    expect(fake.byName("not-kiln")?.state).toBe("started");
    expect(fake.byName("kiln-untasked")?.state).toBe("started");
    const listed = await provider.listByLabels({ task: "live" });
    expect(listed.map((h) => h.name)).toEqual(["task-live"]);
  });

  it("destroy is idempotent", async () => {
    await provider.destroy("task-live");
    await provider.destroy("task-live");
    await provider.destroy("task-never-existed");
    expect(await provider.get("task-live")).toBeNull();
  });

  it("refuses to adopt a same-named sandbox that is not labelled app=kiln", async () => {
    const other = new Daytona({ apiKey: API_KEY, apiUrl: fake.apiUrl, useDeprecatedPolling: true });
    try {
      await other.create({ name: "task-squatted", snapshot: SNAPSHOT, labels: { app: "other" } }, { timeout: 30 });
    } finally {
      await other[Symbol.asyncDispose]();
    }
    await expect(provider.createOrGet(spec("squatted"), ctx())).rejects.toMatchObject({ code: "conflict" });
  });
});

describe("errors and modes", () => {
  it("maps a bad API key to unauthorized", async () => {
    const bad = makeProvider({ apiKey: "wrong-key" });
    const error = await bad.get("task-one").then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe("unauthorized");
    expect((error as KilnError).message).toMatch(/DAYTONA_API_KEY/);
    expect((error as KilnError).message).not.toContain("wrong-key");
  });

  it("maps a missing snapshot to not_found", async () => {
    const p = makeProvider({ snapshotName: "kiln-sandbox:missing" });
    await expect(p.createOrGet(spec("nosnap"), ctx())).rejects.toMatchObject({ code: "not_found" });
  });

  it("maps a server error on create to unavailable", async () => {
    fake.failCreates = { remaining: 1, status: 503, message: "runner capacity exhausted" };
    await expect(provider.createOrGet(spec("busy"), ctx())).rejects.toMatchObject({ code: "unavailable" });
    fake.failCreates = null;
  });

  it("respects ctx.signal", async () => {
    const controller = new AbortController();
    controller.abort(new KilnError("timeout", "step deadline"));
    await expect(provider.createOrGet(spec("aborted"), ctx([], controller.signal))).rejects.toMatchObject({ code: "timeout" });
  });

  it("an aborted create returns promptly; the replayed step adopts the sandbox the API made", async () => {
    const logs: string[] = [];
    const p = makeProvider({ log: (l) => logs.push(l) });
    const creates = fake.count("POST /api/sandbox");
    fake.createDelayMs = 3000;
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new KilnError("timeout", "create-sandbox step deadline")), 300);
      const started = Date.now();
      await expect(p.createOrGet(spec("slow"), ctx([], controller.signal))).rejects.toThrow("create-sandbox step deadline");
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      fake.createDelayMs = 0;
    }
    const handle = await p.createOrGet(spec("slow"), ctx());
    expect(handle.state).toBe("running");
    expect(fake.count("POST /api/sandbox")).toBe(creates + 1);
    await p.destroy("task-slow");
  });

  it("declarative-image mode streams the build log into ctx.progress", async () => {
    const p = makeProvider({
      useDeclarativeImage: true,
      image: () => Image.base("node:22-bookworm-slim").runCommands("echo building kiln"),
    });
    const lines: string[] = [];
    const handle = await p.createOrGet(spec("declarative"), ctx(lines));
    expect(handle.state).toBe("running");
    const text = lines.join("\n");
    expect(text).toContain("from the declarative image");
    expect(text).toContain("Step 2/2 : RUN echo building kiln");
    expect(fake.byName("task-declarative")?.buildInfo?.dockerfileContent).toContain("echo building kiln");
    await p.destroy("task-declarative");
  });
});
