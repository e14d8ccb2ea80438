// Secrets never leave: a full signed-in flow (sign-in, GitHub repo, task → idle, push, pull request) with
// every value a client receives — task detail, the subscription's stream, history, transcript,
// organization and GitHub snapshots, /v1/config, /v1/auth/me — and every backend and engine log line
// scanned for each configured secret: session secret, webhook secret, OAuth client secret, App private
// key, the engine admin token, the sandbox daemons' tokens and every installation token the fake issued.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { type KilnClient, createKilnClient } from "@kiln/client";
import type { TaskDetail } from "@kiln/shared";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type Backend, daemonPids, startBackend, waitFor } from "../harness.ts";
import { OAUTH, WEBHOOK_SECRET, type World, gitHubBackendEnv, startWorld } from "./helpers.ts";

const SESSION_SECRET = "kiln-secret-scan-session-secret-0123456789abcdef";
let world: World;
let backend: Backend;
let alice: KilnClient;
const received: string[] = [];
const record = (what: string, value: unknown) => received.push(`${what}: ${JSON.stringify(value)}`);

async function signIn(login: string): Promise<string> {
  const start = await fetch(`${backend.url}/v1/auth/github/login`, { redirect: "manual" });
  const stateCookie = start.headers.getSetCookie().find((c) => c.startsWith("kiln_oauth_state="))!;
  const state = stateCookie.split(";")[0]!.split("=")[1]!;
  const code = world.fake.issueOAuthCode(login);
  const callback = await fetch(`${backend.url}/v1/auth/github/callback?code=${code}&state=${encodeURIComponent(state)}`, {
    redirect: "manual",
    headers: { cookie: `kiln_oauth_state=${state}` },
  });
  expect(callback.status).toBe(302);
  const session = callback.headers.getSetCookie().find((c) => c.startsWith("kiln_session="))!.split(";")[0]!.split("=")[1]!;
  const me = await (await fetch(`${backend.url}/v1/auth/me`, { headers: { cookie: `kiln_session=${session}` } })).text();
  record("/v1/auth/me", me);
  return JSON.parse(me).token as string;
}

/** A daemon's token: on its command line (`--token=`) or in its environment (`*TOKEN*=`). */
function daemonTokens(): string[] {
  const out: string[] = [];
  for (const pid of daemonPids(backend.dataDir)) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    for (const arg of argv) if (arg.startsWith("--token=")) out.push(arg.slice("--token=".length));
    const inherited = new Set(Object.values(process.env));
    for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
      const eq = entry.indexOf("=");
      const [name, value] = [entry.slice(0, eq), entry.slice(eq + 1)];
      if (/TOKEN/i.test(name) && value.length >= 16 && !inherited.has(value)) out.push(value);
    }
  }
  return out;
}

function engineLogs(): string {
  const dir = path.join(backend.dataDir, "engine/.rivetkit/var/logs");
  let text = "";
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else text += readFileSync(p, "utf8");
    }
  };
  try {
    walk(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return text;
}

beforeAll(async () => {
  world = await startWorld({ withGit: true });
  const acme = world.fake.addInstallation({ account: "acme" });
  await world.fake.addRepo({ installationId: acme.id, owner: "acme", name: "widgets", files: { "README.md": "# widgets\n" } });
  world.fake.addUser({ login: "alice", name: "Alice", installationIds: [acme.id] });
  backend = await startBackend({ env: gitHubBackendEnv(world, SESSION_SECRET) });
  alice = createKilnClient({ endpoint: backend.url, token: await signIn("alice"), callTimeoutMs: 90_000 });
}, 120_000);

afterAll(async () => {
  await alice?.dispose();
  await backend?.destroy();
  await world?.close();
});

test("no configured secret appears in anything a client receives or in any log line", async () => {
  record("/v1/config", await (await fetch(`${backend.url}/v1/config`)).text());
  record("session", await alice.getSession());
  const repo = await alice.addGitHubRepo("acme", { fullName: "acme/widgets" });
  record("repo", repo);
  record("github repos", await alice.listGitHubRepos("acme"));
  const created = await alice.createTask("acme", { repoId: repo.repoId, prompt: "write notes.txt hello" });
  record("created", created);
  const streamed: TaskDetail[] = [];
  const sub = alice.subscribeTask("acme", created.taskId, { onChange: (d) => streamed.push(d), onError: (e) => record("subscription error", String(e)) });
  const orgSub = alice.subscribeOrganization("acme", { onChange: (s) => record("org stream", s) });
  try {
    await waitFor(
      "the task to settle",
      async () => {
        const d = await alice.getTask("acme", created.taskId);
        if (d.task.status === "error") throw new Error(`task failed: ${d.task.error}`);
        return d.task.status === "idle" && d.transcript.some((e) => e.kind === "turn_end") ? d : null;
      },
      90_000,
      500,
    );
    record("pushed", await alice.pushBranch("acme", { taskId: created.taskId }));
    record("pull request", await alice.openPullRequest("acme", { taskId: created.taskId }));
    const final = await alice.getTask("acme", created.taskId);
    record("detail", final);
    record("history", final.history);
    record("transcript", final.transcript);
    record("organization", await alice.getOrganization("acme"));
    record("tasks", await alice.listTasks("acme"));
    record("github", await alice.getGitHub("acme"));
    record("sandboxes", await alice.listSandboxes("acme"));
    await waitFor("the stream to see the pull request", () => streamed.some((d) => d.task.pullRequest !== null) || null, 30_000);
  } finally {
    sub.unsubscribe();
    orgSub.unsubscribe();
  }
  for (const d of streamed) record("task stream", d);

  const engineToken = readFileSync(path.join(backend.dataDir, "engine-admin-token"), "utf8").trim();
  const daemons = daemonTokens();
  const installationTokens = world.fake.tokens.map((t) => t.token);
  expect(daemons.length).toBeGreaterThan(0); // the flow ran a sandbox daemon
  expect(installationTokens.length).toBeGreaterThan(0); // and used GitHub installation tokens
  const keyBody = world.keys.privateKeyPem.split("\n").filter((l) => l && !l.startsWith("-----"));
  const secrets: Record<string, string[]> = {
    "session secret": [SESSION_SECRET],
    "webhook secret": [WEBHOOK_SECRET],
    "OAuth client secret": [OAUTH.clientSecret],
    "App private key": keyBody.slice(1, 4), // lines from its body (any one leaked is a leak)
    "engine admin token": [engineToken],
    "daemon token": daemons,
    "installation token": installationTokens,
  };
  const places: Record<string, string> = {
    "client payloads": received.join("\n"),
    "backend log": backend.log(),
    "engine log": engineLogs(),
  };
  expect(received.length).toBeGreaterThan(10);
  const leaks: string[] = [];
  for (const [place, text] of Object.entries(places)) {
    for (const [name, values] of Object.entries(secrets)) {
      for (const value of values) if (value && text.includes(value)) leaks.push(`${name} in ${place}`);
    }
  }
  expect(leaks).toEqual([]);
}, 240_000);

test("sign-in on: anonymous or forged actor calls through Kiln's gateway proxy are refused before any actor runs", async () => {
  const target = "/v1/rivet/gateway/organization/action/listTasks?rvt-namespace=default&rvt-method=get&rvt-key=org,acme";
  const call = (headers: Record<string, string>) =>
    fetch(`${backend.url}${target}`, { method: "POST", headers: { "content-type": "application/json", "x-rivet-encoding": "json", ...headers }, body: JSON.stringify({ args: [] }) });
  const attempts: Record<string, string>[] = [{}, { "x-rivet-conn-params": JSON.stringify({ token: "kiln1.forged.token" }) }, { cookie: "kiln_session=kiln1.x.y" }];
  for (const headers of attempts) {
    const res = await call(headers);
    expect(res.status, JSON.stringify(headers)).toBe(401);
    expect(await res.json()).toMatchObject({ code: "unauthorized" });
  }
  // The admin API stays refused for a signed-in user too.
  const me = await alice.getSession();
  expect(me.user?.login).toBe("alice");
  const list = await fetch(`${backend.url}/v1/rivet/actors?namespace=default&name=task`);
  expect(list.status).toBe(403);
});
