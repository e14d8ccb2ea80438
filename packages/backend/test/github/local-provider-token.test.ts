// The local provider with `SandboxSpec.repo.accessToken`: clone/fetch and push of a private repo on the
// loopback git server (which demands a valid installation token), the token only in the git command's
// environment — never in the cache repo's config, the worktree or error text.
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GitHubRepoTarget } from "../../src/integrations/github/app.ts";
import { LocalProvider } from "../../src/providers/local/provider.ts";
import type { StepContext } from "../../src/providers/types.ts";
import { git } from "./fakes/git-server.ts";
import { startWorld, type World } from "./helpers.ts";

let w: World;
let dataDir: string;
let provider: LocalProvider;
let widgets: GitHubRepoTarget;
let remote: string;
const minted: string[] = [];

const step = (): StepContext => ({ signal: AbortSignal.timeout(60_000), progress: () => undefined });
const token = (access: "read" | "write") => async () => {
  const t = (await w.driver.createRepoToken(widgets, { permissions: { contents: access } })).token;
  minted.push(t);
  return t;
};

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "kiln-local-token-"));
  w = await startWorld({ withGit: true });
  const inst = w.fake.addInstallation({ account: "acme" });
  await w.fake.addRepo({ installationId: inst.id, owner: "acme", name: "widgets", files: { "README.md": "private\n" } });
  widgets = { installationId: inst.id, owner: "acme", repo: "widgets" };
  remote = w.git!.cloneUrl("acme/widgets");
  provider = new LocalProvider({ dataDir });
});

afterAll(async () => {
  await w?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("local provider with an access token", () => {
  it("without a token the private clone fails, and the error says why", async () => {
    await expect(
      provider.createOrGet({ name: "anon", repo: { remoteUrl: remote, baseBranch: "main", branch: "kiln/anon" }, labels: {}, env: {} }, step()),
    ).rejects.toMatchObject({ name: "KilnError" });
  });

  it("clones with a read token; nothing about the token is stored", async () => {
    const handle = await provider.createOrGet(
      { name: "t1", repo: { remoteUrl: remote, baseBranch: "main", branch: "kiln/t1", accessToken: token("read") }, labels: {}, env: {} },
      step(),
    );
    expect(await readFile(path.join(handle.workdir, "README.md"), "utf8")).toBe("private\n");
    const caches = await readdir(path.join(dataDir, "repos"));
    expect(caches).toHaveLength(1);
    const config = await readFile(path.join(dataDir, "repos", caches[0]!, "config"), "utf8");
    expect(config).toContain(remote);
    expect(config).not.toMatch(/extraheader|authorization|x-access-token/i);
    for (const t of minted) expect(config).not.toContain(t);
    expect(w.git!.requests.filter((r) => r.repo === "acme/widgets" && r.status === 200).every((r) => r.authenticated)).toBe(true);
  });

  it("a second task refreshes the cache with a fresh token (fetch), then pushes its branch with a write token", async () => {
    const handle = await provider.createOrGet(
      { name: "t2", repo: { remoteUrl: remote, baseBranch: "main", branch: "kiln/t2", accessToken: token("read") }, labels: {}, env: {} },
      step(),
    );
    await writeFile(path.join(handle.workdir, "notes.txt"), "hello\n");
    await git(["add", "notes.txt"], handle.workdir);
    await git(["commit", "-q", "-m", "notes"], handle.workdir);
    // A read-only token cannot push (403 from the server) and the error carries no token.
    const refused = await provider.pushBranch(handle, { remoteUrl: remote, branch: "kiln/t2", accessToken: token("read") }).then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(refused?.code).toBe("forbidden");
    for (const t of minted) expect(refused?.message).not.toContain(t);
    const { sha } = await provider.pushBranch(handle, { remoteUrl: remote, branch: "kiln/t2", accessToken: token("write") });
    const bare = w.git!.bareDir("acme/widgets");
    expect(await git(["rev-parse", "refs/heads/kiln/t2"], bare)).toBe(sha);
    expect(await git(["show", "refs/heads/kiln/t2:notes.txt"], bare)).toBe("hello");
    await provider.destroy("t1");
    await provider.destroy("t2");
  });
});
