// End-to-end: real sandbox-agent daemon + real SDK + Kiln's scripted agent (agent id "mock").
// No mocking: the daemon spawns agent/scripted-agent.mjs through the installed launcher.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, existsSync } from "node:fs";
import { access, chmod, copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { SandboxAgent, type Session, type SessionPermissionRequest } from "sandbox-agent";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installScriptedAgentLauncher } from "../src/agents/scripted-agent.ts";

// The SDK surfaces some transport failures as unhandled rejections (see reference gotcha 3);
// record them instead of letting them crash the worker, and fail the suite at the end.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
process.on("unhandledRejection", onUnhandled);

const require = createRequire(import.meta.url);
const DAEMON_BIN = path.join(
  path.dirname(require.resolve("@sandbox-agent/cli-linux-x64/package.json")),
  "bin",
  "sandbox-agent",
);

// bun skips the package's `postinstall: chmod +x` unless it is in trustedDependencies, so the
// binary may be 0644. Use a private executable copy then (chmod in place would also touch
// bun's hardlinked global cache).
async function executableDaemon(tmpDir: string): Promise<string> {
  try {
    await access(DAEMON_BIN, constants.X_OK);
    return DAEMON_BIN;
  } catch {
    const copy = path.join(tmpDir, "sandbox-agent-daemon"); // not "sandbox-agent": that is the state dir
    await copyFile(DAEMON_BIN, copy);
    await chmod(copy, 0o755);
    return copy;
  }
}

// A free port in 30000-39999: bind a candidate to prove it is free, then release it.
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = 30000 + Math.floor(Math.random() * 10000);
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once("error", () => resolve(false));
      srv.listen(candidate, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
    if (ok) return candidate;
  }
  throw new Error("no free port in 30000-39999");
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

type Update = { sessionUpdate: string; [k: string]: any };

// The agent's last chunk of every successful turn (see agent/scripted-agent.mjs).
const SUMMARY = /^(Wrote .*\.|No files written\.)$/;

// Run one prompt, collecting the session/update payloads streamed during it.
// prompt() resolves from the POST response, but updates travel over SSE and can arrive
// *after* it resolves, so wait for the turn's final summary chunk before reading them.
async function turn(session: Session, text: string) {
  const updates: Update[] = [];
  let sawSummary!: () => void;
  const summary = new Promise<void>((resolve) => (sawSummary = resolve));
  const off = session.onEvent((e) => {
    const p = e.payload as { method?: string; params?: { update?: Update } };
    const u = p.method === "session/update" ? p.params?.update : undefined;
    if (!u) return;
    updates.push(u);
    if (u.sessionUpdate === "agent_message_chunk" && SUMMARY.test(u.content?.text ?? "")) sawSummary();
  });
  try {
    const res = await withTimeout(session.prompt([{ type: "text", text }]), 20_000, `prompt ${JSON.stringify(text)}`);
    if (res.stopReason === "end_turn") await withTimeout(summary, 5_000, "streamed updates");
    const reply = updates
      .filter((u) => u.sessionUpdate === "agent_message_chunk")
      .map((u) => u.content?.text ?? "")
      .join("");
    return { res, updates, reply };
  } finally {
    off();
  }
}

let daemon: ChildProcess | undefined;
let daemonLog = "";
let dataHome = "";
let workDir = "";
let sdk: SandboxAgent | undefined;
let session: Session;

beforeAll(async () => {
  dataHome = await mkdtemp(path.join(os.tmpdir(), "kiln-sa-data-"));
  workDir = await mkdtemp(path.join(os.tmpdir(), "kiln-sa-work-"));
  execFileSync("git", ["init", "-q", workDir]);
  await installScriptedAgentLauncher(dataHome);
  await installScriptedAgentLauncher(dataHome); // idempotent

  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const baseUrl = `http://127.0.0.1:${port}`;
  // Run the native binary directly: killing the npm node wrapper would orphan it.
  daemon = spawn(
    await executableDaemon(dataHome),
    ["server", "--host", "127.0.0.1", "--port", String(port), "--token", token, "--no-telemetry"],
    {
      env: { ...process.env, XDG_DATA_HOME: dataHome, SANDBOX_AGENT_REQUIRE_PREINSTALL: "1", SANDBOX_AGENT_LOG_STDOUT: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  daemon.on("error", (err) => void (daemonLog += `\nspawn error: ${err.message}`));
  // Drain output (a full pipe would block the daemon) and keep the tail for failure messages.
  const keep = (b: Buffer) => void (daemonLog = (daemonLog + b.toString()).slice(-8000));
  daemon.stdout?.on("data", keep);
  daemon.stderr?.on("data", keep);

  // Health needs the bearer token when the daemon runs with --token.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (daemon.exitCode !== null) throw new Error(`daemon exited early (${daemon.exitCode}):\n${daemonLog}`);
    const ok = await fetch(`${baseUrl}/v1/health`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(1000),
    }).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`daemon not healthy in 15 s:\n${daemonLog}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  // Without a signal, connect() waits for health forever.
  sdk = await SandboxAgent.connect({ baseUrl, token, signal: AbortSignal.timeout(15_000) });
  session = await withTimeout(sdk.createSession({ agent: "mock", cwd: workDir }), 15_000, "createSession");
});

afterAll(async () => {
  // dispose() can take ~2 s per connection (DELETE /v1/acp never answers); bound it anyway.
  // A slow dispose must not stop the daemon cleanup below, but it is reported.
  if (sdk) {
    await withTimeout(sdk.dispose(), 10_000, "dispose").catch((error: unknown) =>
      console.error("[test] disposing the sandbox-agent client:", error),
    );
  }
  if (daemon && daemon.exitCode === null) {
    const exited = new Promise((r) => daemon!.once("exit", r));
    daemon.kill("SIGTERM");
    await withTimeout(exited, 5_000, "daemon exit").catch(() => daemon!.kill("SIGKILL"));
  }
  process.off("unhandledRejection", onUnhandled);
  await rm(dataHome, { recursive: true, force: true });
  await rm(workDir, { recursive: true, force: true });
  expect(unhandled, "unhandled rejections during the suite").toEqual([]);
});

describe("scripted agent through the real sandbox-agent daemon", () => {
  it("creates a session with a non-empty agent session id", () => {
    expect(session.agentSessionId).toMatch(/^scripted-\d+-\d+$/);
  });

  it("replies with the prompt text verbatim and streams thought + plan", async () => {
    const text = "Hello scripted agent, 🔥 unicode & \"quotes\" stay intact";
    const { res, updates, reply } = await turn(session, text);
    expect(res.stopReason).toBe("end_turn");
    expect(reply).toContain(text);
    expect(updates.map((u) => u.sessionUpdate)).toEqual(expect.arrayContaining(["agent_thought_chunk", "plan"]));
  });

  it("write creates the file in the session cwd", async () => {
    const { res, updates, reply } = await turn(session, "write notes.txt hello world");
    expect(res.stopReason).toBe("end_turn");
    expect(await readFile(path.join(workDir, "notes.txt"), "utf8")).toBe("hello world\n");
    const call = updates.find((u) => u.sessionUpdate === "tool_call");
    expect(call).toMatchObject({ kind: "edit", status: "in_progress", title: "Write notes.txt" });
    expect(updates).toContainEqual(expect.objectContaining({
      sessionUpdate: "tool_call_update", toolCallId: call?.toolCallId, status: "completed",
    }));
    expect(reply).toContain("notes.txt");
  });

  it("refuses to write outside the cwd", async () => {
    const name = `kiln-escape-${randomBytes(4).toString("hex")}.txt`;
    const { res, reply } = await turn(session, `write ../${name} nope`);
    expect(res.stopReason).toBe("end_turn");
    expect(reply).toMatch(/Refused to write/);
    expect(existsSync(path.join(path.dirname(workDir), name))).toBe(false);
  });

  for (const [answer, status, message] of [
    ["once", "completed", "Permission granted"],
    ["reject", "failed", "Permission denied"],
  ] as const) {
    it(`ask-permission answered "${answer}" -> ${status}`, async () => {
      const requests: SessionPermissionRequest[] = [];
      const off = session.onPermissionRequest((req) => {
        requests.push(req);
        void session.respondPermission(req.id, answer);
      });
      try {
        const { res, updates, reply } = await turn(session, "ask-permission");
        expect(res.stopReason).toBe("end_turn");
        expect(requests).toHaveLength(1);
        expect(requests[0]?.availableReplies).toEqual(expect.arrayContaining(["once", "reject"]));
        expect(updates).toContainEqual(expect.objectContaining({ sessionUpdate: "tool_call_update", status }));
        expect(reply).toContain(message);
      } finally {
        off();
      }
    });
  }

  it("fail rejects the prompt with the agent's error", async () => {
    await expect(turn(session, "fail")).rejects.toThrow(/scripted failure requested/);
    // The session remains usable after a failed turn.
    const { res } = await turn(session, "still alive?");
    expect(res.stopReason).toBe("end_turn");
  });

  it("session/cancel (sent by destroySession) aborts a sleeping turn", async () => {
    const other = await withTimeout(sdk!.createSession({ agent: "mock", cwd: workDir }), 15_000, "createSession");
    const pending = other.prompt([{ type: "text", text: "sleep 60000" }]);
    await new Promise((r) => setTimeout(r, 300));
    await sdk!.destroySession(other.id);
    await expect(withTimeout(pending, 10_000, "cancelled prompt")).resolves.toEqual({ stopReason: "cancelled" });
  });
});
