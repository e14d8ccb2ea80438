// Kiln's HTTP surface (Hono): health, client discovery, webhooks, and the built workbench.
// Clients reach actors only through the gateway proxy at /v1/rivet (engine/gateway-proxy.ts); the
// engine itself stays on loopback behind its admin token.
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { Hono } from "hono";
import { RIVET_PROXY_PREFIX } from "./engine/gateway-proxy.ts";

export interface ServerOptions {
  /** Public base URL of Kiln (behind a proxy); default: the URL the request came in on. */
  publicUrl?: string;
  poolName: string;
  frontendDist?: string;
  providers: string[];
  /** Sign-in mode and whether a GitHub App is configured (absent: single-user, no GitHub). */
  auth?: { authEnabled: boolean; githubConfigured: boolean };
  /** Extra routes (webhooks) registered by integrations. */
  extend?: (app: Hono) => void;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

export function createServer(options: ServerOptions): Hono {
  const app = new Hono();
  app.onError((error, c) => {
    // A malformed URL (a lone `%`) is the client's fault, not ours.
    if (error instanceof URIError) return c.json({ code: "invalid_input", message: "malformed URL encoding" }, 400);
    console.error("[kiln] request failed", c.req.method, c.req.path, error.message);
    return c.json({ code: "internal", message: "internal error" }, 500);
  });
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.get("/v1/config", (c) =>
    c.json({
      rivetEndpoint: new URL(RIVET_PROXY_PREFIX, options.publicUrl ?? c.req.url).toString(),
      poolName: options.poolName,
      defaultOrgId: "default",
      providers: options.providers,
      authEnabled: options.auth?.authEnabled ?? false,
      githubConfigured: options.auth?.githubConfigured ?? false,
    }),
  );
  options.extend?.(app);

  const dist = options.frontendDist;
  if (dist && existsSync(path.join(dist, "index.html"))) {
    app.get("/*", async (c) => {
      let decoded: string;
      try {
        decoded = decodeURIComponent(c.req.path);
      } catch {
        return c.json({ code: "invalid_input", message: "malformed URL encoding" }, 400);
      }
      const requested = path.normalize(decoded).replace(/^(\.\.[/\\])+/, "");
      let file = path.join(dist, requested);
      if (!file.startsWith(dist) || !(await stat(file).then((s) => s.isFile(), () => false))) {
        file = path.join(dist, "index.html"); // SPA fallback
      }
      const body = await readFile(file);
      return c.body(body, 200, {
        "content-type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream",
        "cache-control": file.endsWith("index.html") ? "no-cache" : "public, max-age=3600",
      });
    });
  }
  return app;
}
