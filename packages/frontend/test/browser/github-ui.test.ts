// The GitHub parts of the workbench in Chromium against the mock client (`?mock=1`, whose backend has a
// GitHub App "configured"): sync status, the repo picker, Push / Open PR and the PR badges.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StaticServer, buildFrontend, launchBrowser, openPage, startStaticServer } from "./harness.ts";

let server: StaticServer;
let browser: Browser;
const distDir = mkdtempSync(path.join(os.tmpdir(), "kiln-github-ui-"));

const byTestId = (page: Page, id: string) => page.locator(`[data-testid="${id}"]`);

beforeAll(async () => {
  await buildFrontend({}, distDir);
  server = await startStaticServer(distDir);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(distDir, { recursive: true, force: true });
});

describe("GitHub in the workbench (mock)", () => {
  it("syncs, adds a repo from GitHub, pushes and opens a PR that shows on the task and in the sidebar", async () => {
    const ui = await openPage(browser, `${server.url}/?mock=1&mockDelay=80#/`);
    const { page } = ui;
    await expect.poll(() => byTestId(page, "github-sync-status").textContent(), { timeout: 15_000 }).toMatch(/GitHub · Synced/);
    await byTestId(page, "github-sync-button").click();
    await expect.poll(() => byTestId(page, "github-sync-status").textContent(), { timeout: 15_000 }).toMatch(/Synced/);

    // Repo picker: installation repos not yet registered.
    const select = byTestId(page, "github-repo-select");
    await expect.poll(() => select.locator("option").count(), { timeout: 15_000 }).toBe(4);
    await select.selectOption("acme/widgets");
    await byTestId(page, "github-repo-add").click();
    await page.locator(".repo-row", { hasText: "widgets" }).waitFor();
    await expect.poll(() => select.locator("option").count()).toBe(3);
    await ui.screenshot("github-01-repo-added");

    await byTestId(page, "new-task-button").click();
    await byTestId(page, "task-prompt").fill("write notes.txt hello");
    await byTestId(page, "task-submit").click();
    await page.locator('[data-testid="task-status"][data-status="idle"]').waitFor({ timeout: 20_000 });

    await byTestId(page, "push-button").click();
    await page.getByText(/Pushed kiln\//).first().waitFor({ timeout: 10_000 });
    await byTestId(page, "open-pr-button").click();
    const badge = byTestId(page, "pr-badge");
    await badge.waitFor({ timeout: 10_000 });
    await expect(badge.textContent()).resolves.toContain("PR #1 · open");
    await expect(badge.getAttribute("href")).resolves.toMatch(/\/pull\/1$/);
    await expect.poll(() => badge.textContent(), { timeout: 10_000 }).toContain("checks passed");
    await byTestId(page, "pr-pill").first().waitFor();
    await expect(byTestId(page, "pr-pill").first().textContent()).resolves.toContain("#1");
    await expect(byTestId(page, "open-pr-button").textContent()).resolves.toBe("Push to PR");
    await ui.screenshot("github-02-pr-open");
    expect(ui.errors).toEqual([]);
  }, 90_000);
});
