// The workbench on a task with a long transcript (real backend, seeded through the env-gated test hook):
// the task opens with the latest window, and scrolling to the top loads earlier pages back to the start.
import path from "node:path";
import { createKilnClient } from "@kiln/client";
import { DEFAULT_ORG_ID } from "@kiln/shared";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, makeGitRepo, startBackend, tempDir, waitFor } from "../../../backend/test/harness.ts";
import { type RawClient, rawClient, seedTranscript } from "../../../backend/test/seed.ts";
import { buildFrontend, launchBrowser, openPage } from "./harness.ts";

let backend: Backend | undefined;
let browser: Browser | undefined;
let raw: RawClient | undefined;
const client = () => createKilnClient({ endpoint: backend!.url });

beforeAll(async () => {
  const dist = await buildFrontend({}, path.join(tempDir("ui-dist"), "dist"));
  backend = await startBackend({ env: { KILN_FRONTEND_DIST: dist, KILN_TEST_SEED_TRANSCRIPT: "true" } });
  raw = await rawClient(backend);
  browser = await launchBrowser();
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await raw?.dispose();
  await backend?.destroy();
});

describe("transcript paging in the workbench", () => {
  it("opens a task with 1 000 seeded events and loads older pages when scrolled to the top", async () => {
    const kiln = client();
    const repo = await kiln.addRepo(DEFAULT_ORG_ID, { remoteUrl: makeGitRepo({ "README.md": "# paging\n" }) });
    const task = await kiln.createTask(DEFAULT_ORG_ID, { repoId: repo.repoId, prompt: "hello" });
    await waitFor("task idle", async () => (await kiln.getTask(DEFAULT_ORG_ID, task.taskId)).task.status === "idle", 90_000);
    await seedTranscript(raw!, DEFAULT_ORG_ID, task.taskId, "session-1", 1_000, 200);
    await kiln.dispose();

    const ui = await openPage(browser!, `${backend!.url}/#/tasks/${encodeURIComponent(task.taskId)}`);
    const { page } = ui;
    const transcript = page.locator('[data-testid="transcript"]');
    await transcript.getByText(/seed 1\d{3} /).first().waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="transcript-older"]').waitFor();
    expect(await transcript.getByText(/seed 12 x/).count()).toBe(0); // not in the window

    // Scroll to the top until the first seeded event shows (five pages of 200 at most, with slack).
    await waitFor("the first seeded event", async () => {
      await transcript.evaluate((el) => {
        el.scrollTop = 0;
        el.dispatchEvent(new Event("scroll"));
      });
      return (await transcript.getByText(/seed 12 x/).count()) > 0;
    }, 60_000);
    await expect.poll(() => page.locator('[data-testid="transcript-older"]').count(), { timeout: 30_000 }).toBe(0);
    await ui.screenshot("transcript-paging");
    expect(ui.errors).toEqual([]);
  }, 240_000);
});
