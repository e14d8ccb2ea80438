// The provider against REAL Daytona. Skipped unless DAYTONA_API_KEY is set; run before releases:
//   DAYTONA_API_KEY=… DAYTONA_SNAPSHOT_NAME=kiln-sandbox:0.1.0 [DAYTONA_API_URL=… DAYTONA_TARGET=us]
//   [KILN_LIVE_REPO_URL=https://github.com/octocat/Hello-World.git KILN_LIVE_REPO_BASE=master]
//   bunx vitest run test/daytona/daytona-live.test.ts
// It covers what the fake cannot know: the real daemon's argv splitting, home dir, preview proxy
// header handling, auto-stop settings, start-after-stop. Every sandbox it makes is deleted.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadDaytonaConfig } from "../../src/providers/daytona/config.ts";
import { DaytonaProvider } from "../../src/providers/daytona/provider.ts";
import type { SandboxSpec, StepContext } from "../../src/providers/types.ts";

const live = Boolean(process.env.DAYTONA_API_KEY);
const run = randomBytes(3).toString("hex");
const REPO_URL = process.env.KILN_LIVE_REPO_URL ?? "https://github.com/octocat/Hello-World.git";
const REPO_BASE = process.env.KILN_LIVE_REPO_BASE ?? "master";

describe.skipIf(!live)("DaytonaProvider against real Daytona", () => {
  let provider: DaytonaProvider;
  const created: string[] = [];

  const ctx = (lines: string[] = []): StepContext => ({ signal: AbortSignal.timeout(600_000), progress: (l) => lines.push(l) });
  const spec = (task: string): SandboxSpec => {
    const name = `task-live-${run}-${task}`;
    created.push(name);
    return {
      name,
      repo: { remoteUrl: REPO_URL, baseBranch: REPO_BASE, branch: `kiln/live-${run}-${task}` },
      labels: { org: "kiln-live-test", task: `live-${run}-${task}`, run },
      env: {},
    };
  };

  beforeAll(() => {
    const config = loadDaytonaConfig(process.env);
    if (!config) throw new Error("DAYTONA_API_KEY set but config did not load");
    provider = new DaytonaProvider({ ...config, createMode: "api", createTimeoutSec: 300, daemonHealthTimeoutMs: 120_000 });
  });

  afterAll(async () => {
    for (const name of created) await provider.destroy(name);
    await provider.close();
  }, 300_000);

  it("create-or-get is idempotent and checks out the task branch", { timeout: 600_000 }, async () => {
    const s = spec("a");
    const first = await provider.createOrGet(s, ctx());
    const second = await provider.createOrGet(s, ctx());
    expect(second.sandboxId).toBe(first.sandboxId);
    const branch = await provider.exec(first, "git rev-parse --abbrev-ref HEAD");
    expect(branch.stdout.trim()).toBe(s.repo.branch);
    const split = await provider.exec(first, `echo "it's out"; echo err >&2; exit 4`);
    expect(split).toMatchObject({ exitCode: 4, stdout: "it's out\n", stderr: "err\n" });
    await provider.writeFile(first, "kiln-live.txt", "live ✓\n");
    expect(await provider.readFile(first, "kiln-live.txt")).toBe("live ✓\n");
  });

  it("ensureDaemon gives a token-protected endpoint through the preview proxy", { timeout: 600_000 }, async () => {
    const handle = await provider.createOrGet(spec("a"), ctx());
    const token = randomBytes(16).toString("hex");
    const endpoint = await provider.ensureDaemon(handle, { agent: "mock", token, env: {} }, ctx());
    const status = (headers: Record<string, string>) =>
      fetch(`${endpoint.baseUrl}/v1/health`, { headers, signal: AbortSignal.timeout(15_000) }).then((r) => r.status);
    expect(await status({ ...endpoint.headers, authorization: `Bearer ${token}` })).toBe(200);
    expect(await status({ ...endpoint.headers })).toBe(401);
  });

  it("a stopped sandbox is started, not recreated", { timeout: 600_000 }, async () => {
    const s = spec("a");
    const before = await provider.createOrGet(s, ctx());
    await provider.stop(s.name);
    expect((await provider.get(s.name))?.state).toBe("stopped");
    const after = await provider.createOrGet(s, ctx());
    expect(after.sandboxId).toBe(before.sandboxId);
    expect(after.state).toBe("running");
  });

  it("the reaper deletes only this run's orphans", { timeout: 600_000 }, async () => {
    const keep = spec("keep");
    const orphan = spec("orphan");
    await provider.createOrGet(keep, ctx());
    await provider.createOrGet(orphan, ctx());
    // Scope the live set to this run so other runs' sandboxes count as live (never touched).
    const others = (await provider.listByLabels({})).map((h) => h.labels.task ?? "").filter((t) => !t.startsWith(`live-${run}-`));
    const deleted = await provider.reapOrphans(async () => [...others, `live-${run}-a`, keep.labels.task ?? ""]);
    expect(deleted).toEqual([orphan.name]);
  });
});
