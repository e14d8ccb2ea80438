// daytona/create-snapshot.ts and verify-snapshot.ts as real subprocesses (bun) against the fake,
// plus the image definition itself (pins, agents, embedded scripted agent).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MOCK_LAUNCHER_IN_IMAGE,
  SANDBOX_AGENT_SHA256,
  SANDBOX_AGENT_VERSION,
  SCRIPTED_AGENT_IN_IMAGE,
  SCRIPTED_AGENT_SOURCE,
  kilnDockerfile,
} from "../../../../daytona/image.ts";
import { FakeDaytona } from "./fake-daytona.ts";
import { SANDBOX_AGENT_BIN, runBunScript } from "./helpers.ts";

const API_KEY = "scripts-test-key";

describe("daytona/image.ts", () => {
  const dockerfile = kilnDockerfile();

  it("pins sandbox-agent by version and by the sha256 of the binary we test with", () => {
    expect(dockerfile).toMatch(/^FROM node:22-bookworm-slim\n/);
    expect(dockerfile).toContain(`@sandbox-agent/cli-linux-x64@${SANDBOX_AGENT_VERSION}`);
    expect(dockerfile).toContain(`${SANDBOX_AGENT_SHA256}  /usr/local/bin/sandbox-agent" | sha256sum -c -`);
    const local = createHash("sha256").update(readFileSync(SANDBOX_AGENT_BIN)).digest("hex");
    expect(local).toBe(SANDBOX_AGENT_SHA256);
  });

  it("installs git/curl and the claude + codex agents at build time", () => {
    expect(dockerfile).toMatch(/apt-get install -y --no-install-recommends git curl/);
    expect(dockerfile).toContain("sandbox-agent install-agent claude && sandbox-agent install-agent codex");
    expect(dockerfile).toContain("ENV XDG_DATA_HOME=/opt/kiln/data");
    expect(dockerfile).toContain("ENV SANDBOX_AGENT_REQUIRE_PREINSTALL=1");
  });

  it("embeds the current scripted agent byte for byte and installs it as the mock launcher", () => {
    const m = /RUN echo ([A-Za-z0-9+/=]+) \| base64 -d > (\S+)/.exec(dockerfile);
    expect(m?.[2]).toBe(SCRIPTED_AGENT_IN_IMAGE);
    expect(Buffer.from(m?.[1] ?? "", "base64").equals(readFileSync(SCRIPTED_AGENT_SOURCE))).toBe(true);
    expect(dockerfile).toContain(`printf '#!/bin/sh\\nexec node ${SCRIPTED_AGENT_IN_IMAGE} "$@"\\n' > ${MOCK_LAUNCHER_IN_IMAGE}`);
    expect(MOCK_LAUNCHER_IN_IMAGE).toBe("/opt/kiln/data/sandbox-agent/bin/agent_processes/mock-acp");
  });

  it("has no build context to upload (no object-storage round trip)", async () => {
    const { kilnImage } = await import("../../../../daytona/image.ts");
    expect(kilnImage().contextList).toEqual([]);
  });
});

describe("snapshot scripts (subprocesses against the fake)", () => {
  let fake: FakeDaytona;
  let env: Record<string, string>;

  beforeAll(async () => {
    fake = await FakeDaytona.start({ apiKey: API_KEY, sandboxAgentBin: SANDBOX_AGENT_BIN, buildStepMs: 5 });
    env = { DAYTONA_API_KEY: API_KEY, DAYTONA_API_URL: fake.apiUrl, DAYTONA_TARGET: "us", DAYTONA_USE_DEPRECATED_POLLING: "true" };
  });

  afterAll(async () => {
    await fake?.close();
  });

  it("create-snapshot streams the build log and succeeds; verify-snapshot reports it active", async () => {
    const created = await runBunScript("daytona/create-snapshot.ts", ["--name", "kiln-sandbox:0.1.0"], env);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(created.stdout).toContain("Creating snapshot kiln-sandbox:0.1.0");
    expect(created.stdout).toMatch(/Step 1\/\d+ : FROM node:22-bookworm-slim/);
    expect(created.stdout).toContain("sandbox-agent install-agent claude");
    expect(created.stdout).toContain("Created snapshot kiln-sandbox:0.1.0 (active)");
    expect(created.stdout).not.toContain(API_KEY);
    const snap = [...fake.snapshots.values()].find((s) => s.name === "kiln-sandbox:0.1.0");
    expect(snap?.buildInfo?.dockerfileContent).toBe(kilnDockerfile());
    expect(snap).toMatchObject({ cpu: 2, mem: 4, disk: 10, regionIds: ["us"] });

    const verified = await runBunScript("daytona/verify-snapshot.ts", ["--name", "kiln-sandbox:0.1.0"], env);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/state\s+active/);
    expect(verified.stdout).toContain("OK: snapshot kiln-sandbox:0.1.0 is active");
    const json = await runBunScript("daytona/verify-snapshot.ts", ["--name=kiln-sandbox:0.1.0", "--json"], env);
    expect(JSON.parse(json.stdout.slice(0, json.stdout.lastIndexOf("}") + 1))).toMatchObject({ name: "kiln-sandbox:0.1.0", state: "active" });
  });

  it("refuses to overwrite an existing version", async () => {
    const again = await runBunScript("daytona/create-snapshot.ts", ["--name", "kiln-sandbox:0.1.0"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already exists (state active); bump the version");
  });

  it("verify-snapshot fails for a missing snapshot and for one that is not active", async () => {
    const missing = await runBunScript("daytona/verify-snapshot.ts", ["--name", "kiln-sandbox:9.9.9"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("snapshot kiln-sandbox:9.9.9 not found");
    const snap = [...fake.snapshots.values()].find((s) => s.name === "kiln-sandbox:0.1.0");
    if (!snap) throw new Error("snapshot missing");
    snap.state = "build_failed";
    snap.errorReason = "layer 3 failed";
    const failed = await runBunScript("daytona/verify-snapshot.ts", ["--name", "kiln-sandbox:0.1.0"], env);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("is build_failed, not active: layer 3 failed");
    snap.state = "active";
    snap.errorReason = null;
  });

  it("fails clearly with a bad API key, a missing key, or no name", async () => {
    const badKey = await runBunScript("daytona/create-snapshot.ts", ["--name", "kiln-sandbox:0.2.0"], { ...env, DAYTONA_API_KEY: "nope" });
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/HTTP 401: check DAYTONA_API_KEY/);
    const noKey = await runBunScript("daytona/verify-snapshot.ts", ["--name", "x"], { ...env, DAYTONA_API_KEY: "" });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("DAYTONA_API_KEY is not set");
    const noName = await runBunScript("daytona/create-snapshot.ts", [], env);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toContain("usage: bun daytona/create-snapshot.ts");
  });
});
