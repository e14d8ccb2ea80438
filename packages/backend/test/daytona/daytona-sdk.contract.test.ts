// The REAL @daytonaio/sdk against the loopback fake: proves the fake speaks what the SDK sends and
// expects, for every call Kiln makes. If an SDK upgrade breaks one of these, the fake (or Kiln)
// needs updating before the provider can be trusted.
import {
  Daytona,
  DaytonaAuthenticationError,
  DaytonaError,
  DaytonaFileNotFoundError,
  DaytonaNotFoundError,
  Image,
  type Sandbox,
} from "@daytonaio/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDaytona, parseCommand } from "./fake-daytona.ts";
import { SANDBOX_AGENT_BIN, freePort, withTimeout } from "./helpers.ts";

const API_KEY = "contract-test-key";
const SNAPSHOT = "kiln-contract:1";

let fake: FakeDaytona;
let daytona: Daytona;

beforeAll(async () => {
  fake = await FakeDaytona.start({ apiKey: API_KEY, snapshots: [SNAPSHOT], sandboxAgentBin: SANDBOX_AGENT_BIN });
  daytona = new Daytona({ apiKey: API_KEY, apiUrl: fake.apiUrl, target: "us", useDeprecatedPolling: true });
});

afterAll(async () => {
  await daytona?.[Symbol.asyncDispose]();
  await fake?.close();
});

describe("fake's argv splitter (mirrors the daemon)", () => {
  it("groups quotes without escapes", () => {
    expect(parseCommand(`sh -c 'echo "a b"; x'`)).toEqual(["sh", "-c", `echo "a b"; x`]);
    expect(parseCommand(`echo  one   "two three"`)).toEqual(["echo", "one", "two three"]);
  });
});

describe("auth", () => {
  it("rejects a bad API key with DaytonaAuthenticationError (401)", async () => {
    const bad = new Daytona({ apiKey: "wrong", apiUrl: fake.apiUrl, useDeprecatedPolling: true });
    try {
      const error = await bad.get("anything").then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DaytonaAuthenticationError);
      expect((error as DaytonaError).statusCode).toBe(401);
      await expect(bad.snapshot.get(SNAPSHOT)).rejects.toBeInstanceOf(DaytonaAuthenticationError);
    } finally {
      await bad[Symbol.asyncDispose]();
    }
  });
});

describe("sandbox lifecycle", () => {
  let sandbox: Sandbox;

  it("creates from a snapshot with labels/env and waits until started", async () => {
    sandbox = await daytona.create(
      {
        name: "contract-1",
        snapshot: SNAPSHOT,
        envVars: { GREETING: "hello" },
        labels: { app: "kiln", task: "c1" },
        autoStopInterval: 0,
      },
      { timeout: 30 },
    );
    expect(sandbox.state).toBe("started");
    expect(sandbox.name).toBe("contract-1");
    expect(sandbox.labels).toMatchObject({ app: "kiln", task: "c1" });
    expect(sandbox.autoStopInterval).toBe(0);
  });

  it("refuses a second sandbox with the same name (409)", async () => {
    await expect(daytona.create({ name: "contract-1", snapshot: SNAPSHOT }, { timeout: 10 })).rejects.toMatchObject({ statusCode: 409 });
  });

  it("reports a missing snapshot as DaytonaNotFoundError", async () => {
    await expect(daytona.create({ name: "contract-x", snapshot: "nope:0" }, { timeout: 10 })).rejects.toBeInstanceOf(
      DaytonaNotFoundError,
    );
  });

  it("gets by name and lists by labels", async () => {
    const byName = await daytona.get("contract-1");
    expect(byName.id).toBe(sandbox.id);
    const found: string[] = [];
    for await (const s of daytona.list({ labels: { app: "kiln", task: "c1" } })) found.push(s.id);
    expect(found).toEqual([sandbox.id]);
    const none: string[] = [];
    for await (const s of daytona.list({ labels: { app: "kiln", task: "other" } })) none.push(s.id);
    expect(none).toEqual([]);
  });

  it("runs commands through the toolbox (no shell: argv split by the daemon)", async () => {
    const r = await sandbox.process.executeCommand(`sh -c 'echo "$GREETING $HOME" && echo err >&2; exit 3'`);
    expect(r.exitCode).toBe(3);
    expect(r.result).toContain("hello ");
    expect(r.result).toContain("err"); // stderr is merged into result
    const cwd = await sandbox.process.executeCommand("pwd", "/tmp");
    expect(cwd.result.trim()).toBe("/tmp");
  });

  it("uploads and downloads files; a missing file is DaytonaFileNotFoundError", async () => {
    const home = await sandbox.getUserHomeDir();
    expect(home).toBeTruthy();
    await sandbox.fs.uploadFile(Buffer.from("payload ✓\n"), `${home}/dir/a.txt`);
    expect((await sandbox.fs.downloadFile(`${home}/dir/a.txt`)).toString("utf8")).toBe("payload ✓\n");
    await expect(sandbox.fs.downloadFile(`${home}/missing.txt`)).rejects.toBeInstanceOf(DaytonaFileNotFoundError);
  });

  it("runs session commands sync and async", async () => {
    await sandbox.process.createSession("s1");
    const sync = await sandbox.process.executeSessionCommand("s1", { command: "export X=42; echo out; echo err >&2" });
    expect(sync.exitCode).toBe(0);
    expect(sync.output).toContain("out");
    // The session is a persistent shell: state carries over between commands.
    const async = await sandbox.process.executeSessionCommand("s1", { command: "sleep 0.2; echo $X", runAsync: true });
    expect(async.cmdId).toBeTruthy();
    const deadline = Date.now() + 10_000;
    let exitCode: number | undefined;
    while (Date.now() < deadline && exitCode === undefined) {
      exitCode = (await sandbox.process.getSessionCommand("s1", async.cmdId)).exitCode;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(exitCode).toBe(0);
    const logs = await sandbox.process.getSessionCommandLogs("s1", async.cmdId);
    expect(logs.output?.trim()).toBe("42");
    await sandbox.process.deleteSession("s1");
    await expect(sandbox.process.getSession("s1")).rejects.toBeInstanceOf(DaytonaNotFoundError);
  });

  it("reaches a daemon in the sandbox through a token-protected preview link", async () => {
    const port = await freePort();
    await sandbox.process.createSession("daemon");
    await sandbox.process.executeSessionCommand("daemon", {
      command: `sandbox-agent server --host 0.0.0.0 --port ${port} --token t0k --no-telemetry`,
      runAsync: true,
    });
    const link = await sandbox.getPreviewLink(port);
    expect(link.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(link.token).toBeTruthy();
    const health = async (headers: Record<string, string>) =>
      (await fetch(`${link.url}/v1/health`, { headers, signal: AbortSignal.timeout(3000) })).status;
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = await health({ "x-daytona-preview-token": link.token, authorization: "Bearer t0k" });
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect(await health({ authorization: "Bearer t0k" })).toBe(401); // proxy: no preview token
    expect(await health({ "x-daytona-preview-token": link.token })).toBe(401); // daemon: no bearer
    await sandbox.process.deleteSession("daemon");
  });

  it("stops (toolbox then refuses), starts again, and rotates the preview token", async () => {
    const before = (await sandbox.getPreviewLink(3000)).token;
    await sandbox.stop(30);
    expect(sandbox.state).toBe("stopped");
    const error = await sandbox.process.executeCommand("true").then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DaytonaError);
    expect(String((error as Error).message)).toContain("Is the Sandbox started?");
    await sandbox.start(30);
    expect(sandbox.state).toBe("started");
    expect((await sandbox.getPreviewLink(3000)).token).not.toBe(before);
    expect((await sandbox.process.executeCommand("echo back")).result.trim()).toBe("back");
  });

  it("sets auto-stop, refreshes activity, replaces labels", async () => {
    await sandbox.setAutostopInterval(15);
    await sandbox.refreshData();
    expect(sandbox.autoStopInterval).toBe(15);
    await sandbox.refreshActivity();
    const labels = await sandbox.setLabels({ app: "kiln", task: "c1", extra: "1" });
    expect(labels).toMatchObject({ extra: "1" });
  });

  it("deletes: returns while destroying, then the sandbox is gone", async () => {
    await sandbox.delete(30);
    const deadline = Date.now() + 5000;
    let gone = false;
    while (Date.now() < deadline && !gone) {
      gone = await daytona.get(sandbox.id).then(
        (s) => s.state === "destroyed",
        (e: unknown) => e instanceof DaytonaNotFoundError,
      );
      if (!gone) await new Promise((r) => setTimeout(r, 50));
    }
    expect(gone).toBe(true);
  });
});

describe("snapshots", () => {
  it("creates from an Image with streamed build logs, then gets it active", async () => {
    const logs: string[] = [];
    const image = Image.base("node:22-bookworm-slim").runCommands("echo one", "echo two");
    const snap = await withTimeout(
      daytona.snapshot.create({ name: "contract-snap:1", image, resources: { cpu: 1, memory: 1, disk: 3 } }, { onLogs: (l) => logs.push(l), timeout: 60 }),
      30_000,
      "snapshot.create",
    );
    expect(snap.state).toBe("active");
    const text = logs.join("\n");
    expect(text).toContain("Creating snapshot contract-snap:1");
    expect(text).toContain("Step 1/3 : FROM node:22-bookworm-slim");
    expect(text).toContain("Step 3/3 : RUN echo two");
    expect(text).toContain("Created snapshot contract-snap:1 (active)");
    const got = await daytona.snapshot.get("contract-snap:1");
    expect(got.id).toBe(snap.id);
    expect(got.state).toBe("active");
    const page = await daytona.snapshot.list(1, 50);
    expect(page.items.map((s) => s.name)).toContain("contract-snap:1");
  });

  it("throws when the build fails", async () => {
    const image = Image.base("debian:bookworm-slim").runCommands("echo FAKE_BUILD_FAIL && false");
    await expect(
      withTimeout(daytona.snapshot.create({ name: "contract-snap:bad", image }, { onLogs: () => undefined, timeout: 60 }), 30_000, "create"),
    ).rejects.toThrow(/Failed to create snapshot/);
  });

  it("reports a missing snapshot as DaytonaNotFoundError", async () => {
    await expect(daytona.snapshot.get("missing:0")).rejects.toBeInstanceOf(DaytonaNotFoundError);
  });
});
