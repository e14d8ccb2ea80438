// Drives the built workbench in Debian Chromium against the REAL backend (embedded engine, local
// worktree provider, real sandbox-agent daemon, scripted agent). The backend serves the UI at `/`;
// the page discovers its gateway through GET /v1/config (Kiln's own /v1/rivet proxy, decision 0015). No mocks.
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Backend, makeGitRepo, startBackend, tempDir } from "../../../backend/test/harness.ts";
import { type TestPage, buildFrontend, launchBrowser, openPage } from "./harness.ts";

const STEPS = ["ensure-name", "create-sandbox", "ensure-agent", "create-session"] as const;
const failMarker = path.join(tempDir("ui-marker"), "fail-create-sandbox");
const distDir = path.join(tempDir("ui-dist"), "dist");
const fixtureRepo = makeGitRepo({ "README.md": "# ui fixture\n", "app.txt": "one\n" });

let backend: Backend | undefined;
let browser: Browser | undefined;
let ui: TestPage;
/** WebSockets the page opened, and any request straight to the engine port (there must be none). */
const engineRequests: string[] = [];
const failedRequests: string[] = [];

const byTestId = (page: Page, id: string) => page.locator(`[data-testid="${id}"]`);

async function waitForStatus(page: Page, status: string, timeout = 30_000) {
  await page.locator(`[data-testid="task-status"][data-status="${status}"]`).waitFor({ timeout });
}

async function waitForSteps(page: Page, timeout = 45_000) {
  for (const step of STEPS) await page.locator(`[data-testid="step-${step}"][data-state="done"]`).waitFor({ timeout });
}

async function send(page: Page, text: string) {
  const composer = byTestId(page, "composer");
  await expect.poll(() => composer.isEnabled(), { timeout: 30_000 }).toBe(true);
  await composer.fill(text);
  await composer.press("Enter");
}

async function createTask(page: Page, prompt: string) {
  await byTestId(page, "new-task-button").click();
  await byTestId(page, "task-prompt").fill(prompt);
  await byTestId(page, "task-submit").click();
  await page.waitForURL(/#\/tasks\/[^/]+$/);
  return decodeURIComponent(page.url().split("#/tasks/")[1]!);
}

beforeAll(async () => {
  const dist = await buildFrontend({}, distDir);
  backend = await startBackend({ env: { KILN_FRONTEND_DIST: dist, KILN_TEST_FAIL_CREATE_SANDBOX_MARKER: failMarker } });
  browser = await launchBrowser();
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await backend?.destroy();
  rmSync(fixtureRepo, { recursive: true, force: true });
  rmSync(path.dirname(failMarker), { recursive: true, force: true });
  rmSync(path.dirname(distDir), { recursive: true, force: true });
});

// The tests are one story on one page: once a step fails, the later ones would only time out.
let broken = false;
beforeEach((ctx) => {
  if (broken) ctx.skip();
});
afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") broken = true;
});

describe("workbench against the real backend", () => {
  it("serves the UI and reaches the actors through Kiln's gateway proxy, never the engine port", async () => {
    const b = backend!;
    const enginePrefix = `http://127.0.0.1:${b.enginePort}`;
    ui = await openPage(browser!, "about:blank");
    ui.page.on("request", (r) => {
      if (r.url().startsWith(enginePrefix) || r.url().startsWith(`ws://127.0.0.1:${b.enginePort}`)) engineRequests.push(`${r.method()} ${r.url()}`);
    });
    ui.page.on("requestfailed", (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText ?? "?"}`));
    ui.page.on("websocket", (ws) => engineRequests.push(`WS ${ws.url()}`));
    await ui.page.goto(`${b.url}/#/`);
    const { page } = ui;
    await page.getByText("Welcome to Kiln").waitFor({ timeout: 30_000 });
    await expect(page.locator(".mode-chip").textContent()).resolves.toBe(b.url.replace(/^https?:\/\//, ""));
    await ui.screenshot("real-01-empty");
    // Organization calls and subscriptions share one WebSocket through Kiln's own gateway proxy
    // (decision 0015); the browser never talks to the engine's port.
    const kilnWs = `WS ${b.url.replace(/^http/, "ws")}/v1/rivet/gateway/organization/connect`;
    expect(engineRequests.some((r) => r.startsWith(kilnWs)), engineRequests.join("\n")).toBe(true);
    const direct = engineRequests.filter((r) => r.includes(`127.0.0.1:${b.enginePort}`));
    expect(direct, "requests straight to the engine").toEqual([]);
    expect(ui.errors).toEqual([]);
  });

  it("adds a local repo, runs a task to its first reply, writes a file and answers a permission", async () => {
    const { page } = ui;
    await byTestId(page, "repo-add-url").fill(fixtureRepo);
    await byTestId(page, "repo-add-submit").click();
    const repoName = path.basename(fixtureRepo);
    await page.locator(".repo-row", { hasText: repoName }).waitFor({ timeout: 30_000 });
    // The row arrives by the org subscription, possibly before addRepo's own answer clears the form.
    await expect.poll(() => byTestId(page, "repo-add-url").inputValue(), { timeout: 15_000 }).toBe("");

    const prompt = "Summarise the fixture repository";
    const taskId = await createTask(page, prompt);
    await byTestId(page, "step-ensure-name").waitFor();
    // The header has a title from the first frame, before ensure-name stores the real one.
    await expect(page.locator(".task-title").textContent()).resolves.toBe(prompt);
    await ui.screenshot("real-02-provisioning");
    await waitForSteps(page);
    const transcript = byTestId(page, "transcript");
    await transcript.getByText(`You said: ${prompt}`).waitFor({ timeout: 30_000 });
    await waitForStatus(page, "idle");
    await byTestId(page, `task-row-${taskId}`).waitFor();
    await expect(page.locator(".task-meta").textContent()).resolves.toContain("kiln/summarise-the-fixture-repository");
    await ui.screenshot("real-03-first-reply");

    await send(page, "write notes.txt hello");
    await byTestId(page, "changed-file-notes.txt").waitFor({ timeout: 30_000 });
    await byTestId(page, "changed-file-notes.txt").click();
    await byTestId(page, "diff-view").locator("tr.diff-add", { hasText: "+hello" }).waitFor({ timeout: 15_000 });
    await waitForStatus(page, "idle");
    await ui.screenshot("real-04-diff");

    await send(page, "ask-permission");
    await byTestId(page, "permission-allow").waitFor({ timeout: 30_000 });
    await waitForStatus(page, "needs_input");
    await ui.screenshot("real-05-permission");
    await byTestId(page, "permission-allow").click();
    await transcript.getByText("Permission granted").waitFor({ timeout: 30_000 });
    await waitForStatus(page, "idle");
    await expect(byTestId(page, "permission-answer").last().textContent()).resolves.toContain("Allowed");
    await ui.screenshot("real-06-permission-granted");
    expect(ui.errors).toEqual([]);
  });

  it("shows a failed provisioning step with its error and retries it", async () => {
    const { page } = ui;
    writeFileSync(failMarker, "fail");
    await createTask(page, "retry after a sandbox failure");
    await page.locator('[data-testid="step-create-sandbox"][data-state="failed"]').waitFor({ timeout: 30_000 });
    await waitForStatus(page, "error");
    await expect(page.locator(".step-error").textContent()).resolves.toContain("injected create-sandbox failure");
    await expect(byTestId(page, "step-retry").isEnabled()).resolves.toBe(true);
    await expect(page.locator('[data-testid="step-ensure-name"]').getAttribute("data-state")).resolves.toBe("done");
    await ui.screenshot("real-07-step-failed");

    rmSync(failMarker);
    await byTestId(page, "step-retry").click();
    await waitForSteps(page);
    await expect(page.locator('[data-testid="step-create-sandbox"] .step-attempt').textContent()).resolves.toContain("attempt 2");
    await byTestId(page, "transcript").getByText("You said: retry after a sandbox failure").waitFor({ timeout: 30_000 });
    await waitForStatus(page, "idle");
    await expect(page.locator(".step-error").count()).resolves.toBe(0);
    await ui.screenshot("real-08-retried");
    expect(ui.errors).toEqual([]);
  });

  it("archives the task and releases its sandbox", async () => {
    const { page } = ui;
    await byTestId(page, "archive-button").click();
    await byTestId(page, "confirm-accept").click();
    await waitForStatus(page, "archived");
    await expect(byTestId(page, "composer").isDisabled()).resolves.toBe(true);
    await page.locator(".task-meta", { hasText: "destroyed" }).waitFor({ timeout: 15_000 });
    await page.locator(".task-group", { hasText: "Archived" }).waitFor();
    await ui.screenshot("real-09-archived");
    expect(ui.errors).toEqual([]);
    expect(failedRequests.filter((r) => !r.includes("ERR_ABORTED"))).toEqual([]);
  });
});
