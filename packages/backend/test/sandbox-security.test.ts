// Kiln issue 10: a user's own task must not reach Kiln's secrets or escape its work dir. Real backend,
// real daemons, through @kiln/client: the sandbox environment is an allow-list, daemon tokens are not
// on any command line, and file operations stay inside the work dir whatever symlinks the agent plants.
import { readFileSync, readdirSync, symlinkSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type KilnClient, createKilnClient } from "@kiln/client";
import { DEFAULT_ORG_ID, type RepoRecord, type TaskDetail } from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Backend, daemonPids, makeGitRepo, startBackend, tempDir, waitFor } from "./harness.ts";
import { processTree } from "../src/providers/local/argv-scrub.ts";

const org = DEFAULT_ORG_ID;
// Decoys in the backend's environment that no sandbox process may see (names Kiln must scrub; none of
// them switches on sign-in, GitHub or Daytona).
const DECOYS = {
  KILN_SESSION_SECRET: "decoy-session-secret-0123456789abcdef0123456789",
  KILN_TEST_DECOY_SECRET: "decoy-kiln-secret-5f1c9e",
  GITHUB_TEST_DECOY_TOKEN: "decoy-github-token-7a2b4d",
};
let backend: Backend;
let client: KilnClient;
let repo: RepoRecord;
let outside: string;

beforeAll(async () => {
  backend = await startBackend({ env: DECOYS });
  client = createKilnClient({ endpoint: backend.url });
  repo = await client.addRepo(org, { remoteUrl: makeGitRepo({ "README.md": "# sec\n" }) });
  outside = tempDir("outside");
  writeFileSync(path.join(outside, "secret.txt"), "outside secret\n");
}, 90_000);

afterAll(async () => {
  await client?.dispose();
  await backend?.destroy();
});

async function readyTask(prompt = "hello"): Promise<TaskDetail> {
  const record = await client.createTask(org, { repoId: repo.repoId, prompt });
  return waitFor(`task ${record.taskId} idle`, async () => {
    const d = await client.getTask(org, record.taskId);
    if (d.task.status === "error") throw new Error(`task failed: ${d.task.error}`);
    return d.task.status === "idle" ? d : null;
  }, 60_000);
}

const workdir = (taskId: string) => path.join(backend.dataDir, "sandboxes", `task-${taskId}`, "repo");


function readProc(pid: number, file: "environ" | "cmdline"): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return ""; // exited while we looked
  }
}

/** Processes whose command line or environment names this backend's data dir. */
function backendProcesses(): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => (readProc(pid, "cmdline") + readProc(pid, "environ")).includes(backend.dataDir));
}

async function expectCode(promise: Promise<unknown>, codes: string[]): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e as { code?: string },
  );
  expect(error, "the operation must be refused").not.toBeNull();
  expect(codes).toContain(error?.code);
}

describe("sandbox environment and daemon tokens", () => {
  test("exec, the daemon and its agents see none of Kiln's secrets and not root's HOME", async () => {
    const detail = await readyTask();
    const taskId = detail.task.taskId;
    const env = await client.exec(org, { taskId, command: "env" });
    expect(env.exitCode).toBe(0);
    expect(env.stdout).toContain("PATH=");
    for (const value of Object.values(DECOYS)) expect(env.stdout).not.toContain(value);
    expect(env.stdout).not.toMatch(/^(KILN_|GITHUB_|DAYTONA_)/m);
    const home = /^HOME=(.*)$/m.exec(env.stdout)?.[1];
    expect(home).toBeTruthy();
    expect(home).not.toBe(os.homedir());

    const daemons = daemonPids(backend.dataDir);
    expect(daemons.length).toBeGreaterThan(0);
    const pids = daemons.flatMap(processTree);
    expect(pids.length).toBeGreaterThan(daemons.length); // the agent process runs under its daemon
    for (const pid of pids) {
      const seen = readProc(pid, "environ") + readProc(pid, "cmdline");
      for (const value of Object.values(DECOYS)) expect(seen).not.toContain(value);
      expect(readProc(pid, "environ")).not.toMatch(/(^|\0)(KILN_|GITHUB_|DAYTONA_)/);
    }
  });

  test("no process of this backend has a daemon token on its command line", async () => {
    await readyTask();
    const daemons = daemonPids(backend.dataDir);
    expect(daemons.length).toBeGreaterThan(0);
    const pids = new Set([...daemons.flatMap(processTree), ...backendProcesses()]);
    const leaks: string[] = [];
    for (const pid of pids) {
      const cmdline = readProc(pid, "cmdline").split("\0").join(" ");
      // Tokens are 48 hex characters; a scrubbed one reads "xxx…".
      if (/[0-9a-f]{48}/.test(cmdline)) leaks.push(`${pid}: ${cmdline}`);
    }
    expect(leaks).toEqual([]);
  });
});

describe("file operations stay inside the work dir", () => {
  let taskId: string;
  let otherTaskId: string;
  beforeAll(async () => {
    taskId = (await readyTask()).task.taskId;
    otherTaskId = (await readyTask()).task.taskId;
    const dir = workdir(taskId);
    symlinkSync("/etc/passwd", path.join(dir, "passwd-link"));
    symlinkSync(outside, path.join(dir, "outside-dir"));
    symlinkSync(path.join(outside, "new.txt"), path.join(dir, "dangling-link"));
    symlinkSync(workdir(otherTaskId), path.join(dir, "other-sandbox"));
    mkdirSync(path.join(dir, "sub"));
    writeFileSync(path.join(dir, "sub", "inside.txt"), "inside\n");
    symlinkSync("sub/inside.txt", path.join(dir, "inside-link"));
  }, 150_000);

  test("reads through symlinks leaving the work dir are refused; inside ones work", async () => {
    await expectCode(client.readFile(org, { taskId, path: "passwd-link" }), ["invalid_input", "not_found"]);
    await expectCode(client.readFile(org, { taskId, path: "outside-dir/secret.txt" }), ["invalid_input", "not_found"]);
    await expectCode(client.readFile(org, { taskId, path: "other-sandbox/README.md" }), ["invalid_input", "not_found"]);
    expect(await client.readFile(org, { taskId, path: "inside-link" })).toBe("inside\n");
    expect(await client.readFile(org, { taskId, path: "./sub/inside.txt" })).toBe("inside\n");
  });

  test("writes through symlinked files or directories never land outside", async () => {
    const otherReadme = path.join(workdir(otherTaskId), "README.md");
    const before = readFileSync(otherReadme, "utf8");
    await expectCode(client.writeFile(org, { taskId, path: "outside-dir/pwned.txt", content: "x" }), ["invalid_input"]);
    await expectCode(client.writeFile(org, { taskId, path: "dangling-link", content: "x" }), ["invalid_input"]);
    await expectCode(client.writeFile(org, { taskId, path: "passwd-link", content: "x" }), ["invalid_input"]);
    await expectCode(client.writeFile(org, { taskId, path: "other-sandbox/README.md", content: "x" }), ["invalid_input"]);
    await expectCode(client.writeFile(org, { taskId, path: "other-sandbox/new/deep.txt", content: "x" }), ["invalid_input"]);
    expect(existsSync(path.join(outside, "pwned.txt"))).toBe(false);
    expect(existsSync(path.join(outside, "new.txt"))).toBe(false);
    expect(existsSync(path.join(workdir(otherTaskId), "new"))).toBe(false);
    expect(readFileSync(otherReadme, "utf8")).toBe(before);
    expect(readFileSync("/etc/passwd", "utf8")).not.toBe("x");
    // Ordinary writes, with new parent dirs, still work.
    await client.writeFile(org, { taskId, path: "made/new/file.txt", content: "ok\n" });
    expect(readFileSync(path.join(workdir(taskId), "made/new/file.txt"), "utf8")).toBe("ok\n");
  });

  test("bad path shapes are a typed 4xx, never internal", async () => {
    const bad = ["/etc/passwd", "../x", "a/../../x", "a\0b", ".git/config", ".git/hooks/pre-commit", "sub/.git/x", ".", "./"];
    for (const p of bad) {
      await expectCode(client.readFile(org, { taskId, path: p }), ["invalid_input", "not_found"]);
      await expectCode(client.writeFile(org, { taskId, path: p, content: "x" }), ["invalid_input", "not_found"]);
      await expectCode(client.getFileDiff(org, taskId, p), ["invalid_input", "not_found"]);
    }
    // Directories are not files.
    await expectCode(client.writeFile(org, { taskId, path: "sub", content: "x" }), ["invalid_input"]);
    await expectCode(client.readFile(org, { taskId, path: "sub" }), ["invalid_input"]);
    await expectCode(client.getFileDiff(org, taskId, "sub"), ["invalid_input"]);
    await expectCode(client.readFile(org, { taskId, path: "missing.txt" }), ["not_found"]);
    await expectCode(client.getFileDiff(org, taskId, "missing.txt"), ["not_found"]);
    // The hooks dir is untouched and a real diff still works.
    expect(existsSync(path.join(workdir(taskId), ".git"))).toBe(true);
    await client.writeFile(org, { taskId, path: "README.md", content: "# changed\n" });
    expect((await client.getFileDiff(org, taskId, "README.md")).diff).toContain("+# changed");
    expect((await client.getFileDiff(org, taskId, "made/new/file.txt")).diff).toContain("+ok");
  });
});

describe("bubblewrap isolation (default when bwrap works)", () => {
  test("task A cannot see task B's files, processes or token, nor the data dir; git and the agent still work", async () => {
    const a = (await readyTask()).task.taskId;
    const b = (await readyTask()).task.taskId;
    const bDir = path.join(backend.dataDir, "sandboxes", `task-${b}`);
    writeFileSync(path.join(workdir(b), "b-secret.txt"), "b secret\n");
    const sh = async (command: string) => client.exec(org, { taskId: a, command });

    expect((await sh(`cat ${path.join(workdir(b), "b-secret.txt")}`)).stdout).not.toContain("b secret");
    expect((await sh(`cat ${path.join(bDir, "daemon.json")}`)).exitCode).not.toBe(0);
    expect((await sh(`ls -A ${path.join(backend.dataDir, "sandboxes")}`)).stdout.trim().split("\n")).toEqual([`task-${a}`]);
    // The data dir shows only what A's mounts need: no engine database, no other state.
    const dataDirListing = (await sh(`ls -A ${backend.dataDir}`)).stdout.trim().split("\n").sort();
    const hostListing = readdirSync(backend.dataDir).sort();
    expect(hostListing.length).toBeGreaterThan(dataDirListing.length);
    for (const entry of dataDirListing) expect(["sandboxes", "repos", "agent-home", "bin"]).toContain(entry);
    // Own PID namespace: none of B's (or the backend's) processes, and no token anywhere in /proc.
    const procs = await sh(`for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done`);
    expect(procs.exitCode).toBe(0);
    expect(procs.stdout).not.toContain(`task-${b}`);
    expect(procs.stdout).not.toContain(backend.dataDir + "/engine");
    expect(procs.stdout).not.toMatch(/[0-9a-f]{48}/);
    expect(procs.stdout).not.toContain("src/main.ts");
    const bDaemon = daemonPids(backend.dataDir).find((pid) => readProc(pid, "cmdline").length > 0 && readProc(pid, "environ").includes(`task-${b}`));
    expect(bDaemon).toBeDefined();
    expect((await sh(`cat /proc/${bDaemon}/environ`)).stdout).not.toContain(`task-${b}`);
    // The backend's own files are not mounted.
    expect((await sh(`test -e ${path.join(process.cwd(), "src/main.ts")}`)).exitCode).not.toBe(0);

    // git commit inside A works and lands on A's branch in the shared cache.
    const commit = await sh(`echo x > committed.txt && git add committed.txt && git commit -qm "from the sandbox" && git log -1 --format=%s`);
    expect(commit.stderr).toBe("");
    expect(commit.stdout.trim()).toBe("from the sandbox");
    // The scripted agent runs inside the sandbox and can still write in the work dir.
    await client.sendMessage(org, { taskId: a, sessionId: "session-1", text: "write notes.txt hello" });
    await waitFor("notes.txt written by the agent", () => existsSync(path.join(workdir(a), "notes.txt")), 60_000);
    expect(readFileSync(path.join(workdir(a), "notes.txt"), "utf8")).toContain("hello");
  });
});
