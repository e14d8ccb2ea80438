// GitHub sign-in in Chromium against the REAL backend with sign-in on: the backend serves the built UI,
// its GitHub App (JWT auth, OAuth client) points at the loopback fake GitHub, and the browser walks the
// whole web flow — sign-in gate → /v1/auth/github/login (state cookie) → the fake's authorize page →
// /v1/auth/github/callback (code exchange, session cookie) → the workbench for the user's organization.
// The UI is opened at http://localhost:<port> and the fake lives at http://127.0.0.1:<port>, so the hop
// to "GitHub" and back is cross-site like the real one (the SameSite=Lax state cookie must survive it)
// and the fake's `user_session` cookie never reaches Kiln. No mocks.
import { rmSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Backend, freePort, startBackend, tempDir } from "../../../backend/test/harness.ts";
import { OAUTH, type World, gitHubBackendEnv, startWorld } from "../../../backend/test/github/helpers.ts";
import { buildFrontend, launchBrowser } from "./harness.ts";

const SESSION_SECRET = "kiln-ui-sign-in-session-secret-0123456789";
const distDir = path.join(tempDir("ui-dist"), "dist");

let world: World;
let backend: Backend | undefined;
let browser: Browser | undefined;
/** The UI's origin as the browser sees it (the backend binds 127.0.0.1; Chromium maps localhost to it). */
let kiln: string;
const contexts: BrowserContext[] = [];

const byTestId = (page: Page, id: string) => page.locator(`[data-testid="${id}"]`);

interface Visitor {
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors and console errors. */
  errors: string[];
  /** Top-level navigations of the page, redirect hops included. */
  navigations: string[];
}

/** A fresh browser profile; `githubUser`: who is signed in to "github.com" in it (null: nobody). */
async function visitor(githubUser: string | null): Promise<Visitor> {
  const context = await browser!.newContext({ viewport: { width: 1440, height: 900 } });
  contexts.push(context);
  if (githubUser) {
    const { name, value } = world.fake.createWebSession(githubUser);
    await context.addCookies([{ name, value, url: world.fake.url, httpOnly: true, sameSite: "Lax" }]);
  }
  const page = await context.newPage();
  const errors: string[] = [];
  const navigations: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("request", (request) => {
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) navigations.push(request.url());
  });
  return { context, page, errors, navigations };
}

/** Every cookie the browser holds for Kiln's host, whatever its path (`cookies(url)` filters by path). */
async function kilnCookies(context: BrowserContext) {
  return (await context.cookies()).filter((c) => c.domain === new URL(kiln).hostname);
}

/** GET /v1/auth/me from the page: what the page's own session (its cookies) says. */
function meFromPage(page: Page) {
  return page.evaluate(async () => {
    const response = await fetch("/v1/auth/me");
    return (await response.json()) as { user: { login: string } | null; orgs: string[]; token: string | null };
  });
}

beforeAll(async () => {
  world = await startWorld();
  const acme = world.fake.addInstallation({ account: "acme" });
  const globex = world.fake.addInstallation({ account: "globex" });
  await world.fake.addRepo({ installationId: acme.id, owner: "acme", name: "widgets" });
  await world.fake.addRepo({ installationId: globex.id, owner: "globex", name: "secret-plans" });
  world.fake.addUser({ login: "alice", name: "Alice", installationIds: [acme.id] });
  world.fake.addUser({ login: "carol", name: "Carol", installationIds: [] });

  const dist = await buildFrontend({}, distDir);
  const port = await freePort();
  kiln = `http://localhost:${port}`;
  backend = await startBackend({
    port,
    env: {
      KILN_FRONTEND_DIST: dist,
      ...gitHubBackendEnv(world, SESSION_SECRET),
    },
  });
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  for (const context of contexts) await context.close().catch((error: unknown) => console.error("closing a browser context:", error));
  await browser?.close();
  await backend?.destroy();
  await world?.close();
  rmSync(path.dirname(distDir), { recursive: true, force: true });
});

// The first tests are one story on one page: once a step fails, the later ones would only time out.
let broken = false;
beforeEach((ctx) => {
  if (broken) ctx.skip();
});
afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") {
    broken = true;
    if (backend) console.error(`backend log:\n${backend.log().slice(-4000)}`);
  }
});

let alice: Visitor;

describe("GitHub sign-in in the browser", () => {
  it("a signed-out visitor gets the sign-in gate, not the workbench", async () => {
    alice = await visitor("alice");
    const { page } = alice;
    await page.goto(`${kiln}/`);
    await byTestId(page, "sign-in").waitFor({ timeout: 30_000 });
    await expect(byTestId(page, "sign-in-button").textContent()).resolves.toBe("Sign in with GitHub");
    await expect(byTestId(page, "sign-in-button").getAttribute("href")).resolves.toBe("/v1/auth/github/login");
    await expect(page.locator(".session-bar").count()).resolves.toBe(0);
    await expect(byTestId(page, "new-task-button").count()).resolves.toBe(0);
    await expect(page.getByText("Welcome to Kiln").count()).resolves.toBe(0);
    expect((await kilnCookies(alice.context)).map((c) => c.name)).toEqual([]);
    expect(alice.errors).toEqual([]);
  });

  it("signs in through GitHub's authorize page and opens the workbench for the user's organization", async () => {
    const { page, context } = alice;
    const exchangesBefore = world.fake.requests.filter((r) => r.path === "/login/oauth/access_token").length;
    alice.navigations.length = 0;
    await byTestId(page, "sign-in-button").click();
    await page.locator(".session-bar").waitFor({ timeout: 30_000 });

    // The hops the browser made: Kiln login → the fake's authorize page → Kiln callback → the workbench.
    const hops = alice.navigations.map((u) => new URL(u));
    expect(hops.map((u) => `${u.origin}${u.pathname}`)).toEqual([
      `${kiln}/v1/auth/github/login`,
      `${world.fake.url}/login/oauth/authorize`,
      `${kiln}/v1/auth/github/callback`,
      `${kiln}/`,
    ]);
    const [, authorize, callback] = hops as [URL, URL, URL, URL];
    expect(authorize.searchParams.get("client_id")).toBe(OAUTH.clientId);
    expect(authorize.searchParams.get("redirect_uri")).toBe(`${kiln}/v1/auth/github/callback`);
    const state = authorize.searchParams.get("state");
    expect(state).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(callback.searchParams.get("state")).toBe(state);
    expect(callback.searchParams.get("code")).toMatch(/^[0-9a-f]{20}$/);
    // The backend exchanged that code with GitHub exactly once.
    expect(world.fake.requests.filter((r) => r.path === "/login/oauth/access_token").length).toBe(exchangesBefore + 1);

    // The workbench, for alice's organization (the account the App is installed on), backed by the
    // organization actor (the empty state needs its snapshot) and by acme's installation (its repo).
    await expect(page.locator(".session-login").textContent()).resolves.toBe("alice");
    await expect(page.locator(".org-name").textContent()).resolves.toBe("acme");
    await page.getByText("Welcome to Kiln").waitFor({ timeout: 30_000 });
    await byTestId(page, "sign-in").waitFor({ state: "detached" });
    const repoSelect = byTestId(page, "github-repo-select");
    await expect
      .poll(() => repoSelect.locator("option").allTextContents(), { timeout: 30_000 })
      .toContain("acme/widgets (private)");
    expect((await repoSelect.locator("option").allTextContents()).join("|")).not.toContain("globex");

    // The session cookie is http-only (scripts cannot read it), Lax, site-wide; the state cookie is gone.
    const cookies = await kilnCookies(context);
    expect(cookies.map((c) => c.name)).toEqual(["kiln_session"]);
    const session = cookies[0]!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/", secure: false });
    expect(session.expires).toBeGreaterThan(Date.now() / 1000 + 3600);
    await expect(page.evaluate(() => document.cookie)).resolves.not.toContain("kiln_session");
    const me = await meFromPage(page);
    expect(me).toMatchObject({ user: { login: "alice" }, orgs: ["acme"] });
    // The GitHub user token from the exchange never reaches the browser.
    expect(JSON.stringify(me)).not.toMatch(/ghu_/);
    expect(alice.errors).toEqual([]);
  });

  it("a user whose accounts have no installation of the App gets the no-organizations screen", async () => {
    const carol = await visitor("carol");
    const { page } = carol;
    await page.goto(`${kiln}/`);
    await byTestId(page, "sign-in-button").click();
    const noOrgs = byTestId(page, "no-orgs");
    await noOrgs.waitFor({ timeout: 30_000 });
    await expect(noOrgs.textContent()).resolves.toContain("Signed in as carol");
    await expect(page.locator(".session-bar").count()).resolves.toBe(0);
    await expect(page.getByText("Welcome to Kiln").count()).resolves.toBe(0);
    expect((await kilnCookies(carol.context)).map((c) => c.name)).toEqual(["kiln_session"]);
    await expect(meFromPage(page)).resolves.toMatchObject({ user: { login: "carol" }, orgs: [] });
    expect(carol.errors).toEqual([]);
    await carol.context.close();
  });

  it("sign out returns to the gate and the browser no longer has a session", async () => {
    const { page, context } = alice;
    await page.locator('.session-bar [data-testid="sign-out"]').click();
    await byTestId(page, "sign-in").waitFor({ timeout: 30_000 });
    await expect(page.locator(".session-bar").count()).resolves.toBe(0);
    expect((await kilnCookies(context)).map((c) => c.name)).toEqual([]);
    await page.reload();
    await byTestId(page, "sign-in").waitFor({ timeout: 30_000 });
    await expect(page.getByText("Welcome to Kiln").count()).resolves.toBe(0);
    await expect(meFromPage(page)).resolves.toMatchObject({ user: null, orgs: [], token: null });
    expect(alice.errors).toEqual([]);
  });
});

describe("the OAuth state check", () => {
  it("a callback whose state does not match the browser's state cookie signs nobody in", async () => {
    // Nobody is signed in to "GitHub" here: the authorize page stops the flow, after Kiln has set the
    // state cookie for this browser.
    const mallory = await visitor(null);
    const { page, context } = mallory;
    await page.goto(`${kiln}/`);
    await byTestId(page, "sign-in-button").click();
    await page.getByText("Sign in to GitHub to continue").waitFor({ timeout: 30_000 });
    expect(new URL(page.url()).origin).toBe(world.fake.url);
    const stateCookie = (await kilnCookies(context)).find((c) => c.name === "kiln_oauth_state");
    expect(stateCookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/v1/auth/github" });

    // A valid, unused code for alice, delivered with a state that is not this browser's.
    const code = world.fake.issueOAuthCode("alice");
    const exchangesBefore = world.fake.requests.filter((r) => r.path === "/login/oauth/access_token").length;
    // The browser is sent back to the sign-in screen with the reason (API clients get the JSON 400).
    await page.goto(`${kiln}/v1/auth/github/callback?code=${code}&state=forged-${stateCookie!.value.slice(0, 8)}x`);
    await byTestId(page, "sign-in-error").waitFor({ timeout: 30_000 });
    await expect(byTestId(page, "sign-in-error").textContent()).resolves.toBe(
      "Sign-in failed: sign-in state does not match; start again from the sign-in button",
    );
    expect(page.url()).toBe(`${kiln}/`); // the reason is read once, then dropped from the address
    // Refused before the code was exchanged; no session cookie, and the state cookie is spent.
    expect(world.fake.requests.filter((r) => r.path === "/login/oauth/access_token").length).toBe(exchangesBefore);
    expect((await kilnCookies(context)).map((c) => c.name)).toEqual([]);
    await page.reload();
    await byTestId(page, "sign-in").waitFor({ timeout: 30_000 });
    expect(await byTestId(page, "sign-in-error").count()).toBe(0);
    await expect(meFromPage(page)).resolves.toMatchObject({ user: null, token: null });
  });
});
