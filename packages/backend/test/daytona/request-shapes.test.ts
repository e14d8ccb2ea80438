// Golden file of what Kiln's Daytona code makes the SDK send: `METHOD route ?query {body keys}`
// for every distinct request in a full provider + snapshot scenario. An SDK upgrade that changes a
// route, a query or a body shape fails here instead of silently drifting away from the fake.
// Regenerate deliberately with UPDATE_GOLDEN=1 (then review the diff and the fake).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { Daytona, Image } from "@daytonaio/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DaytonaProvider } from "../../src/providers/daytona/provider.ts";
import type { SandboxSpec, StepContext } from "../../src/providers/types.ts";
import { FakeDaytona, type RecordedRequest } from "./fake-daytona.ts";
import { SANDBOX_AGENT_BIN, freePort, makeRemoteRepo } from "./helpers.ts";

const GOLDEN = new URL("./request-shapes.golden.json", import.meta.url);
const API_KEY = "golden-key";
const SNAPSHOT = "kiln-sandbox:golden";

let fake: FakeDaytona;
let repo: Awaited<ReturnType<typeof makeRemoteRepo>>;
let provider: DaytonaProvider;
let daytona: Daytona;

beforeAll(async () => {
  fake = await FakeDaytona.start({ apiKey: API_KEY, snapshots: [SNAPSHOT], sandboxAgentBin: SANDBOX_AGENT_BIN });
  repo = await makeRemoteRepo();
  provider = new DaytonaProvider({
    apiKey: API_KEY,
    apiUrl: fake.apiUrl,
    target: "us",
    snapshotName: SNAPSHOT,
    autoStopMinutes: 20,
    createMode: "api",
    useDeprecatedPolling: true,
    createTimeoutSec: 30,
    daemonPort: await freePort(),
    gitCredentials: async () => ({ username: "x-access-token", password: "ghs_golden" }),
    log: () => undefined,
  });
  daytona = new Daytona({ apiKey: API_KEY, apiUrl: fake.apiUrl, target: "us", useDeprecatedPolling: true });
});

afterAll(async () => {
  await provider?.close();
  await daytona?.[Symbol.asyncDispose]();
  await fake?.close();
  await repo?.cleanup();
});

function shape(r: RecordedRequest): string {
  const query = r.query.length ? ` ?${r.query.join("&")}` : "";
  const body = r.body.length ? ` {${r.body.join(",")}}` : "";
  return `${r.method} ${r.route}${query}${body}`;
}

it("the requests Kiln's Daytona code sends match the golden file", async () => {
  const ctx: StepContext = { signal: AbortSignal.timeout(60_000), progress: () => undefined };
  const spec: SandboxSpec = {
    name: "task-golden",
    repo: { remoteUrl: `file://${repo.bare}`, baseBranch: "main", branch: "kiln/golden" },
    labels: { org: "default", task: "golden" },
    env: { ANTHROPIC_API_KEY: "sk-golden" },
  };
  // Provider: everything a task does.
  const handle = await provider.createOrGet(spec, ctx);
  await provider.createOrGet(spec, ctx);
  await provider.exec(handle, "git status --short");
  await provider.writeFile(handle, "notes/a.txt", "a\n");
  await provider.readFile(handle, "notes/a.txt");
  await provider.ensureDaemon(handle, { agent: "mock", token: "golden-token", env: {} }, ctx);
  await provider.release("task-golden");
  await fake.forceStop("task-golden");
  await provider.createOrGet(spec, ctx);
  await provider.listByLabels({ org: "default" });
  await provider.stop("task-golden");
  await provider.reapOrphans(async () => []);
  await provider.destroy("task-golden");
  // Snapshot scripts: create with streamed logs, get.
  await daytona.snapshot.create(
    { name: "kiln-sandbox:golden-2", image: Image.base("node:22-bookworm-slim").runCommands("true"), resources: { cpu: 2, memory: 4, disk: 10 } },
    { onLogs: () => undefined, timeout: 60 },
  );
  await daytona.snapshot.get("kiln-sandbox:golden-2");

  const shapes = [...new Set(fake.requests.filter((r) => !r.route.startsWith("PREVIEW")).map(shape))].sort();
  if (process.env.UPDATE_GOLDEN === "1") {
    writeFileSync(GOLDEN, `${JSON.stringify(shapes, null, 2)}\n`);
  }
  if (!existsSync(GOLDEN)) throw new Error("request-shapes.golden.json is missing: run with UPDATE_GOLDEN=1 and review it");
  const golden = JSON.parse(readFileSync(GOLDEN, "utf8")) as string[];
  expect(shapes).toEqual(golden);
});
