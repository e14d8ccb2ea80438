// Real git against the loopback git server (git http-backend), which accepts only a currently valid
// installation token from the fake GitHub, scoped to the repo, with contents:write for pushes.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GitHubRepoTarget } from "../../src/integrations/github/app.ts";
import { cloneRepo, gitAuthEnv, gitWithToken, pushBranch, redactSecrets } from "../../src/integrations/github/git.ts";
import { git, TEST_GIT_IDENTITY } from "./fakes/git-server.ts";
import { expectKilnError, startWorld, type World } from "./helpers.ts";

let w: World;
let tmp: string;
let widgets: GitHubRepoTarget;
let remote: string;
let commits = 0;

async function freshDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmp, prefix));
}

/** Clone with a token and commit a file on a new branch. */
async function commitOnBranch(branch: string): Promise<string> {
  const { token } = await w.driver.createRepoToken(widgets);
  const dir = path.join(await freshDir("wt-"), "repo");
  await cloneRepo({ remoteUrl: remote, dir, token });
  await git(["checkout", "--quiet", "-b", branch], dir);
  // Unique content: two identical commits in the same second would have the same SHA.
  await writeFile(path.join(dir, "change.txt"), `${branch} ${++commits}\n`);
  await git(["add", "-A"], dir);
  await git(["commit", "--quiet", "-m", branch], dir, TEST_GIT_IDENTITY);
  return dir;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "kiln-gh-git-"));
  w = await startWorld({ withGit: true, tokenTtlMs: 60 * 60_000 });
  const inst = w.fake.addInstallation({ account: "acme" });
  await w.fake.addRepo({ installationId: inst.id, owner: "acme", name: "widgets", files: { "README.md": "hello\n" } });
  await w.fake.addRepo({ installationId: inst.id, owner: "acme", name: "gadgets" });
  widgets = { installationId: inst.id, owner: "acme", repo: "widgets" };
  remote = w.git!.cloneUrl("acme/widgets");
});

afterAll(async () => {
  await w?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe("clone", () => {
  it("clones with a token and leaves no credential in the clone", async () => {
    const { token } = await w.driver.createRepoToken(widgets);
    const dir = path.join(await freshDir("clone-"), "repo");
    await cloneRepo({ remoteUrl: remote, dir, token, branch: "main", depth: 1 });
    expect(await readFile(path.join(dir, "README.md"), "utf8")).toBe("hello\n");
    const config = await readFile(path.join(dir, ".git", "config"), "utf8");
    expect(config).toContain(remote);
    expect(config).not.toContain(token);
    expect(config.toLowerCase()).not.toContain("extraheader");
    expect(config.toLowerCase()).not.toContain("authorization");
  });

  it("the server refuses a clone without a token", async () => {
    const dir = path.join(await freshDir("noauth-"), "repo");
    const before = w.git!.requests.length;
    await expect(git(["clone", "--quiet", remote, dir])).rejects.toThrow(/could not read Username|Authentication failed/);
    expect(w.git!.requests.slice(before).map((r) => [r.status, r.authenticated])).toEqual([[401, false]]);
  });

  it("a bogus token is unauthorized, and the error text never contains it", async () => {
    const bogus = "ghs_0123456789abcdefghijABCDEFGHIJ012345";
    const dir = path.join(await freshDir("bogus-"), "repo");
    const error = await expectKilnError(cloneRepo({ remoteUrl: remote, dir, token: bogus }), "unauthorized");
    expect(error.message).not.toContain(bogus);
    expect(error.message).not.toContain(Buffer.from(`x-access-token:${bogus}`).toString("base64"));
  });

  it("a token scoped to another repo cannot see this one", async () => {
    const { token } = await w.driver.createRepoToken({ ...widgets, repo: "gadgets" });
    const dir = path.join(await freshDir("scoped-"), "repo");
    await expectKilnError(cloneRepo({ remoteUrl: remote, dir, token }), "not_found");
  });
});

describe("push", () => {
  it("pushes a branch with a token; the remote has the commit", async () => {
    const dir = await commitOnBranch("kiln/push-1");
    const { token } = await w.driver.createRepoToken(widgets);
    const { sha } = await pushBranch({ cwd: dir, remoteUrl: remote, branch: "kiln/push-1", token });
    expect(await w.git!.resolve("acme/widgets", "refs/heads/kiln/push-1")).toBe(sha);
    expect((await w.driver.listBranches(widgets)).map((b) => b.name)).toContain("kiln/push-1");
    const pushes = w.git!.requests.filter((r) => r.service === "git-receive-pack" && r.method === "POST");
    expect(pushes.at(-1)).toMatchObject({ status: 200, authenticated: true, access: "write" });
  });

  it("a push without a token is rejected by the server", async () => {
    const dir = await commitOnBranch("kiln/no-token");
    const before = w.git!.requests.length;
    await expect(git(["push", "--quiet", remote, "kiln/no-token"], dir)).rejects.toThrow(/could not read Username|Authentication failed/);
    expect(w.git!.requests.slice(before).every((r) => r.status === 401)).toBe(true);
    expect(await w.git!.resolve("acme/widgets", "refs/heads/kiln/no-token")).toBeNull();
  });

  it("a read-only token cannot push (403 → forbidden)", async () => {
    const dir = await commitOnBranch("kiln/read-only");
    const { token } = await w.driver.createRepoToken(widgets, { permissions: { contents: "read" } });
    await expectKilnError(pushBranch({ cwd: dir, remoteUrl: remote, branch: "kiln/read-only", token }), "forbidden");
  });

  it("a revoked token cannot push", async () => {
    const dir = await commitOnBranch("kiln/revoked");
    const { token } = await w.driver.createRepoToken(widgets);
    w.fake.tokens.find((t) => t.token === token)!.revoked = true;
    const error = await expectKilnError(pushBranch({ cwd: dir, remoteUrl: remote, branch: "kiln/revoked", token }), "unauthorized");
    expect(error.message).not.toContain(token);
    // auth-app would keep handing out the cached, revoked token; forceRefresh mints a new one.
    expect((await w.driver.createRepoToken(widgets)).token).toBe(token);
    const fresh = await w.driver.createRepoToken(widgets, { forceRefresh: true });
    expect(fresh.token).not.toBe(token);
    await pushBranch({ cwd: dir, remoteUrl: remote, branch: "kiln/revoked", token: fresh.token });
  });

  it("non-fast-forward is a conflict; force overwrites", async () => {
    const first = await commitOnBranch("kiln/rewrite");
    const { token } = await w.driver.createRepoToken(widgets);
    await pushBranch({ cwd: first, remoteUrl: remote, branch: "kiln/rewrite", token });
    const second = await commitOnBranch("kiln/rewrite"); // a sibling commit on main, same branch name
    await expectKilnError(pushBranch({ cwd: second, remoteUrl: remote, branch: "kiln/rewrite", token }), "conflict");
    const { sha } = await pushBranch({ cwd: second, remoteUrl: remote, branch: "kiln/rewrite", token, force: true });
    expect(await w.git!.resolve("acme/widgets", "refs/heads/kiln/rewrite")).toBe(sha);
  });

  it("rejects branch names and URLs that are not safe to pass to git", async () => {
    const { token } = await w.driver.createRepoToken(widgets);
    await expectKilnError(pushBranch({ cwd: tmp, remoteUrl: remote, branch: "--upload-pack=evil", token }), "invalid_input");
    await expectKilnError(pushBranch({ cwd: tmp, remoteUrl: "ext::sh -c evil", branch: "main", token }), "invalid_input");
    expect(() => gitAuthEnv("https://user:pw@github.com/acme/widgets.git", token)).toThrow(/must not embed credentials/);
    expect(() => gitAuthEnv("file:///tmp/x", token)).toThrow(/http/);
  });

  it("honours the deadline", async () => {
    // A listener that never answers: git's HTTP request hangs until the deadline kills it.
    const net = await import("node:net");
    const sockets = new Set<import("node:net").Socket>();
    let peerClosed = 0;
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.resume(); // read (and drop) the request, so the peer's EOF is noticed
      s.on("close", () => void peerClosed++);
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as import("node:net").AddressInfo).port;
    try {
      await expectKilnError(
        gitWithToken(["ls-remote", `http://127.0.0.1:${port}/acme/widgets.git`], {
          remoteUrl: `http://127.0.0.1:${port}/acme/widgets.git`,
          token: "ghs_dummytoken123456",
          timeoutMs: 300,
          action: "list remote refs",
        }),
        "timeout",
      );
      // The whole process group died: git-remote-http's connection is closed by the kernel.
      const until = Date.now() + 3000;
      while (peerClosed < sockets.size && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(sockets.size).toBeGreaterThan(0);
      expect(peerClosed).toBe(sockets.size);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

describe("token handling helpers", () => {
  it("puts the token only in the child environment, scoped to the remote's origin", () => {
    const env = gitAuthEnv("https://github.com/acme/widgets.git", "ghs_abc123");
    expect(env.GIT_CONFIG_KEY_0).toBe("http.https://github.com/.extraHeader");
    expect(env.GIT_CONFIG_VALUE_0).toBe(`Authorization: Basic ${Buffer.from("x-access-token:ghs_abc123").toString("base64")}`);
    expect(env.GIT_CONFIG_KEY_1).toBe("credential.helper");
    expect(env.GIT_TERMINAL_PROMPT).toBe("0");
  });

  it("redacts tokens and auth headers", () => {
    const text = "fatal: ghs_abcdefghijklmnop failed; Authorization: Basic eC1hY2Nlc3MtdG9rZW46c2VjcmV0 x secret-one";
    const out = redactSecrets(text, ["secret-one"]);
    expect(out).toBe("fatal: *** failed; Authorization: Basic *** x ***");
  });
});
