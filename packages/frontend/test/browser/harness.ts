// Reusable pieces for browser tests of the workbench: build the UI, serve it, drive Debian Chromium.
// Used by the mock-mode test here and by real-backend tests (point the page at `?endpoint=<backend>`).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type Browser, type Page, chromium } from "playwright-core";

export const FRONTEND_DIR = fileURLToPath(new URL("../..", import.meta.url));
export const REPO_ROOT = path.resolve(FRONTEND_DIR, "../..");
export const DIST_DIR = path.join(FRONTEND_DIR, "dist");
export const SCREENSHOT_DIR = path.join(REPO_ROOT, "test-artifacts", "screenshots");

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * `vite build` into `outDir` (default packages/frontend/dist; test files that run in parallel pass their
 * own so one build never empties the directory another is serving). KILN_FRONTEND_PREBUILT=1 reuses
 * an existing packages/frontend/dist.
 */
export async function buildFrontend(env: Record<string, string> = {}, outDir: string = DIST_DIR): Promise<string> {
  if (process.env.KILN_FRONTEND_PREBUILT === "1" && existsSync(path.join(DIST_DIR, "index.html"))) return DIST_DIR;
  const vite = path.join(FRONTEND_DIR, "node_modules", ".bin", "vite");
  try {
    await promisify(execFile)(vite, ["build", "--logLevel", "warn", "--outDir", outDir, "--emptyOutDir"], {
      cwd: FRONTEND_DIR,
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`vite build failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
  return outDir;
}

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".map": "application/json",
};

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1 at a free port; unknown paths fall back to index.html. */
export async function startStaticServer(dir: string = DIST_DIR): Promise<StaticServer> {
  const root = path.resolve(dir);
  const server = createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    const target = path.resolve(root, `.${pathname}`);
    const serve = async () => {
      let file = target.startsWith(root) ? target : path.join(root, "index.html");
      const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT" || error.code === "ENOTDIR") return null;
        throw error;
      });
      if (!info || info.isDirectory()) file = path.join(root, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": MIME[path.extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      res.end(body);
    };
    serve().catch((error: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`static server error: ${String(error)}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

export function chromiumPath(): string {
  const candidate = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(candidate)) throw new Error(`Chromium not found at ${candidate}: apt-get install -y chromium, or set KILN_CHROMIUM`);
  return candidate;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
}

export interface TestPage {
  page: Page;
  /** Uncaught page errors and console errors, for asserting a clean run. */
  errors: string[];
  screenshot(name: string): Promise<string>;
}

export async function openPage(browser: Browser, url: string, viewport = { width: 1440, height: 900 }): Promise<TestPage> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  await page.goto(url);
  return {
    page,
    errors,
    async screenshot(name: string) {
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const file = path.join(SCREENSHOT_DIR, `${name}.png`);
      await page.screenshot({ path: file });
      return file;
    },
  };
}
