// Drives the built workbench in Debian Chromium against the in-memory mock client (`?mock=1`).
import { createServer } from "node:net";
import { PROMPT_MAX_CHARS } from "@kiln/shared";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StaticServer, type TestPage, buildFrontend, launchBrowser, openPage, startStaticServer } from "./harness.ts";

let server: StaticServer;
let browser: Browser;
let ui: TestPage;

const byTestId = (page: Page, id: string) => page.locator(`[data-testid="${id}"]`);

async function waitForStatus(page: Page, status: string) {
  await page.locator(`[data-testid="task-status"][data-status="${status}"]`).waitFor({ timeout: 15_000 });
}

async function send(page: Page, text: string) {
  const composer = byTestId(page, "composer");
  await expect.poll(() => composer.isEnabled(), { timeout: 15_000 }).toBe(true);
  await composer.fill(text);
  await composer.press("Enter");
}

beforeAll(async () => {
  await buildFrontend();
  server = await startStaticServer();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe("workbench in mock mode", () => {
  it("adds a repo, runs a task end to end, and archives it", async () => {
    ui = await openPage(browser, `${server.url}/?mock=1&mockDelay=120#/`);
    const { page } = ui;
    await page.getByText("Welcome to Kiln").waitFor();
    await ui.screenshot("01-empty");

    // Add a repository.
    await byTestId(page, "repo-add-url").fill("https://github.com/acme/widgets.git");
    await byTestId(page, "repo-add-submit").click();
    await page.locator(".repo-row", { hasText: "widgets" }).waitFor();

    // Create a task: the view switches to the task at once and shows provisioning from task state.
    await byTestId(page, "new-task-button").click();
    await byTestId(page, "task-prompt").fill("Add a hello world script");
    await expect(byTestId(page, "task-repo").inputValue()).resolves.toMatch(/^widgets-/);
    await ui.screenshot("01b-new-task");
    await byTestId(page, "task-submit").click();
    await page.waitForURL(/#\/tasks\/t\d+-/);
    await byTestId(page, "step-ensure-name").waitFor();
    await ui.screenshot("02-provisioning");

    for (const step of ["ensure-name", "create-sandbox", "ensure-agent", "create-session"]) {
      await page.locator(`[data-testid="step-${step}"][data-state="done"]`).waitFor({ timeout: 15_000 });
    }
    const transcript = byTestId(page, "transcript");
    await transcript.getByText("You said: Add a hello world script").waitFor({ timeout: 15_000 });
    await waitForStatus(page, "idle");
    await expect(page.locator('[data-testid^="session-tab-"]').first().textContent()).resolves.toContain("Session 1");
    await ui.screenshot("03-first-reply");

    // The scripted agent writes a file: it shows in changed files with a coloured diff.
    await send(page, "write notes.txt hello");
    await byTestId(page, "changed-file-notes.txt").waitFor({ timeout: 15_000 });
    await byTestId(page, "changed-file-notes.txt").click();
    const diff = byTestId(page, "diff-view");
    await diff.locator("tr.diff-add", { hasText: "+hello" }).waitFor();
    await waitForStatus(page, "idle");
    await ui.screenshot("04-diff");

    // A permission request: task needs input until answered.
    await send(page, "ask-permission");
    await byTestId(page, "permission-allow").waitFor({ timeout: 15_000 });
    await waitForStatus(page, "needs_input");
    await expect(byTestId(page, "composer").isDisabled()).resolves.toBe(true);
    await ui.screenshot("05-permission");
    await byTestId(page, "permission-allow").click();
    await transcript.getByText("Permission granted").waitFor({ timeout: 15_000 });
    await waitForStatus(page, "idle");
    await expect(byTestId(page, "permission-answer").last().textContent()).resolves.toContain("Allowed");

    // An agent failure shows in the transcript and the status badge.
    await send(page, "fail");
    await transcript.getByText("scripted failure requested").first().waitFor({ timeout: 15_000 });
    await waitForStatus(page, "error");
    await ui.screenshot("06-agent-error");

    // Archive with confirmation.
    await byTestId(page, "archive-button").click();
    await byTestId(page, "confirm-accept").click();
    await waitForStatus(page, "archived");
    await expect(byTestId(page, "composer").isDisabled()).resolves.toBe(true);
    await page.locator(".task-group", { hasText: "Archived" }).waitFor();
    await ui.screenshot("07-archived");
    expect(ui.errors).toEqual([]);
  });

  it("shows a failed provisioning step and retries it", async () => {
    const { page } = ui;
    await byTestId(page, "new-task-button").click();
    await byTestId(page, "task-prompt").fill("fail-provision");
    await byTestId(page, "task-submit").click();
    await page.locator('[data-testid="step-create-sandbox"][data-state="failed"]').waitFor({ timeout: 15_000 });
    await waitForStatus(page, "error");
    await expect(page.locator(".step-error").textContent()).resolves.toContain("simulated");
    await ui.screenshot("08-step-failed");
    await byTestId(page, "step-retry").click();
    await page.locator('[data-testid="step-create-session"][data-state="done"]').waitFor({ timeout: 15_000 });
    await expect(page.locator('[data-testid="step-create-sandbox"] .step-attempt').textContent()).resolves.toContain("attempt 2");
    await byTestId(page, "transcript").getByText("You said: fail-provision").waitFor({ timeout: 15_000 });
    await ui.screenshot("09-retried");
    expect(ui.errors).toEqual([]);
  });

  it("manages sessions and shows KilnError messages", async () => {
    const { page } = ui;
    await waitForStatus(page, "idle");
    await byTestId(page, "session-add").click();
    const tabs = page.locator('[data-testid^="session-tab-"]');
    await expect.poll(() => tabs.count()).toBe(2);
    await tabs.nth(1).dblclick();
    await byTestId(page, "session-rename-input").fill("Review");
    await byTestId(page, "session-rename-input").press("Enter");
    await page.locator('[role="tab"]', { hasText: "Review" }).waitFor();
    await send(page, "hello from review");
    await byTestId(page, "transcript").getByText("You said: hello from review").waitFor({ timeout: 15_000 });
    await byTestId(page, "session-close").click();
    await expect.poll(() => tabs.count()).toBe(1);

    // An invalid repo URL is rejected by the shared input schema; the message is shown.
    await byTestId(page, "repo-add-url").fill("not a url");
    await byTestId(page, "repo-add-submit").click();
    await page.locator(".repo-form .form-error").getByText("remoteUrl must be").waitFor();

    // Unknown task: an error state, not a blank page.
    await page.goto(`${page.url().split("#")[0]}#/tasks/does-not-exist`);
    await byTestId(page, "task-error").getByText("Task not found").waitFor();
    await ui.screenshot("10-not-found");
    expect(ui.errors).toEqual([]);
  });

  it("shows the prompt limit and refuses a prompt over it", async () => {
    const { page } = ui;
    await page.goto(`${page.url().split("#")[0]}#/`);
    await byTestId(page, "new-task-button").click();
    await byTestId(page, "task-prompt").fill("short prompt");
    await expect(byTestId(page, "task-prompt-counter").textContent()).resolves.toContain(`12 / ${PROMPT_MAX_CHARS.toLocaleString()}`);
    await expect(byTestId(page, "task-submit").isEnabled()).resolves.toBe(true);
    await byTestId(page, "task-prompt").fill("x".repeat(PROMPT_MAX_CHARS + 5));
    await expect(byTestId(page, "task-prompt-counter").textContent()).resolves.toContain("5 over the limit");
    await expect(byTestId(page, "task-submit").isEnabled()).resolves.toBe(false);
    expect(ui.errors).toEqual([]);
  });
});

describe("workbench in remote mode", () => {
  it("shows a designed error, not a blank page, when the backend is unreachable", async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.once("error", reject);
      probe.listen(0, "127.0.0.1", () => {
        const address = probe.address();
        probe.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
      });
    });
    const remote = await openPage(browser, `${server.url}/?endpoint=http://127.0.0.1:${port}#/`);
    await remote.page.locator('[data-testid="connection-banner"], .empty-state:has-text("Could not reach Kiln")').first().waitFor({ timeout: 30_000 });
    await remote.screenshot("11-backend-unreachable");
    await remote.page.context().close();
  });
});
