// Wires GitHub and sign-in into the backend from the environment: the App driver, the auth mode, the
// actor-edge checks, and the HTTP routes (`POST /v1/webhooks/github`, `/v1/auth/*`). main.ts calls
// `setupGitHub()` once and passes `deps`/`auth` to the registry and `mountRoutes` to the server.
import { KilnError, OrgIdSchema, errorMessage } from "@kiln/shared";
import type { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { createClient } from "rivetkit/client";
import { orgForWebhook } from "../../actors/github-state/index.ts";
import { AUTH_DISABLED, ActorAuth } from "../../auth/actor-auth.ts";
import { type AuthConfig, loadAuthConfig } from "../../auth/config.ts";
import { registerAuthRoutes } from "../../auth/routes.ts";
import type { GitHubDeps } from "../../deps.ts";
import { OctokitGitHubApp } from "./app.ts";
import { describeGitHubConfig, loadGitHubConfig } from "./config.ts";
import { type GitHubWebhookEvent, handleGithubWebhookRequest } from "./webhooks.ts";

/** GitHub counts a delivery slower than 10 s as failed; stay well inside it. */
const WEBHOOK_DEADLINE_MS = 8_000;
/** GitHub caps webhook payloads at 25 MB. */
const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

export interface GitHubSetup {
  github: GitHubDeps | null;
  auth: ActorAuth;
  authConfig: AuthConfig;
  /** For `/v1/config`: what the UI needs to know before it calls anything. */
  publicConfig: { authEnabled: boolean; githubConfigured: boolean };
  mountRoutes(app: Hono, engine: { endpoint: string; poolName: string }): void;
  close(): Promise<void>;
}

interface GitHubStateForRoute {
  receiveWebhook(event: GitHubWebhookEvent): Promise<{ duplicate: boolean }>;
}
interface RouteClient {
  githubState: { getOrCreate(key: string[], opts?: object): GitHubStateForRoute };
  dispose(): Promise<void>;
}

function withDeadline<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KilnError("timeout", `${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Throws a KilnError naming the bad variable (never its value) when GitHub or auth is half configured. */
export function setupGitHub(env: Record<string, string | undefined> = process.env, log = (m: string) => console.log(m)): GitHubSetup {
  const config = loadGitHubConfig(env);
  const authConfig = loadAuthConfig(env, config);
  const auth = authConfig.secret ? new ActorAuth(authConfig.secret) : AUTH_DISABLED;
  const driver = config
    ? new OctokitGitHubApp(config, {
        log: {
          debug: () => undefined,
          info: () => undefined,
          warn: (m) => log(`[kiln] github: ${m}`),
          error: (m) => log(`[kiln] github: ${m}`),
        },
      })
    : null;
  const github: GitHubDeps | null = driver ? { driver, multiOrg: authConfig.enabled } : null;
  if (config) {
    log(
      `[kiln] GitHub App ${JSON.stringify(describeGitHubConfig(config))}; sign-in ${authConfig.enabled ? "on (multi-user)" : "off (single-user)"}`,
    );
  }
  let client: RouteClient | null = null;

  return {
    github,
    auth,
    authConfig,
    publicConfig: { authEnabled: authConfig.enabled, githubConfigured: driver !== null },

    mountRoutes(app, engine) {
      registerAuthRoutes(app, { auth: authConfig, driver, log });
      const rivet = (): RouteClient => {
        client ??= createClient({ endpoint: engine.endpoint, poolName: engine.poolName, devtools: false } as Parameters<
          typeof createClient
        >[0]) as unknown as RouteClient;
        return client;
      };

      app.post("/v1/webhooks/github", async (c) => {
        if (!driver || !github) return c.json({ code: "not_found", message: "GitHub is not configured on this backend" }, 404);
        const length = Number(c.req.header("content-length") ?? "0");
        if (length > MAX_WEBHOOK_BYTES) return c.json({ code: "invalid_input", message: "webhook body is too large" }, 413);
        // The exact bytes GitHub signed: no JSON body parser runs before this.
        const raw = new Uint8Array(await c.req.arrayBuffer());
        try {
          const result = await handleGithubWebhookRequest(driver, raw, c.req.raw.headers, async (event) => {
            const orgId = orgForWebhook(event, github.multiOrg);
            if (orgId === null || !OrgIdSchema.safeParse(orgId).success) return;
            const params = auth.internalParams();
            const actor = rivet().githubState.getOrCreate(["org", orgId, "github"], params ? { params } : {});
            await withDeadline(`github-state of ${orgId}`, WEBHOOK_DEADLINE_MS, actor.receiveWebhook(event));
          });
          return c.json(result.body, result.status as ContentfulStatusCode);
        } catch (error) {
          // Not 2xx, so GitHub shows the delivery as failed (redeliver it from the App settings).
          const code = error instanceof KilnError ? error.code : "unavailable";
          log(`[kiln] GitHub webhook ${c.req.header("x-github-delivery") ?? "?"} not applied: ${errorMessage(error)}`);
          return c.json({ code, message: "the delivery could not be applied; it can be redelivered" }, 503);
        }
      });
    },

    async close() {
      if (client) await client.dispose();
      client = null;
    },
  };
}
