// Kiln backend entry point: embedded Rivet Engine + actors + HTTP server, all from validated env.
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage } from "@kiln/shared";
import { agentEnv, loadConfig } from "./config.ts";
import type { BackendDeps } from "./deps.ts";
import { mountActionsWebhook } from "./integrations/github-actions/route.ts";
import { setupGitHub } from "./integrations/github/setup.ts";
import { GatewayProxy } from "./engine/gateway-proxy.ts";
import { loadEngineToken } from "./engine/token.ts";
import { buildProviders } from "./providers/index.ts";
import { makeRegistry } from "./registry.ts";
import { createServer } from "./server.ts";
import { setNativeEnv } from "./util/native-env.ts";
import { isProcessAlive, sleep, terminate } from "./util/process.ts";

const config = loadConfig();
const started = Date.now();

// The engine keeps its database under our data dir, so two instances never share state.
const engineDir = path.join(config.KILN_DATA_DIR, "engine");
mkdirSync(engineDir, { recursive: true });
setNativeEnv("RIVETKIT_STORAGE_PATH", engineDir);
// Kiln does not use Rivet Services; they also clash across instances on one host.
setNativeEnv("RIVET_RUN_SERVICES", process.env.RIVET_RUN_SERVICES ?? "0");
// Lock the engine's admin API: the embedded engine takes its token from this env, the runner (and the
// backend's own clients) present it as RIVET_TOKEN. Clients never see it (engine/gateway-proxy.ts).
const engineToken = loadEngineToken(config);
if (!config.KILN_ENGINE_ENDPOINT) setNativeEnv("RIVET__AUTH__ADMIN_TOKEN", engineToken);
setNativeEnv("RIVET_TOKEN", engineToken);

// The sandbox-agent SDK can reject without a handler when an agent dies mid-request (reference notes,
// gotcha 3). Log it instead of crashing the whole backend; the turn itself fails through its watchdog.
process.on("unhandledRejection", (reason) => {
  console.error("[kiln] unhandled rejection:", errorMessage(reason));
});

// local always; daytona when DAYTONA_API_KEY is set (invalid Daytona settings stop the start here).
const sandboxes = await buildProviders(config);
// GitHub App + sign-in (both optional; a half-configured GitHub/auth env stops the start here).
const github = setupGitHub();
const deps: BackendDeps = {
  config,
  providers: sandboxes.providers,
  agentEnv: agentEnv(),
  github: github.github,
  auth: github.auth,
};

const engineEndpoint = config.KILN_ENGINE_ENDPOINT ?? `http://127.0.0.1:${config.KILN_ENGINE_PORT}`;
const registry = makeRegistry(deps, {
  endpoint: config.KILN_ENGINE_ENDPOINT,
  enginePort: config.KILN_ENGINE_PORT,
  poolName: config.KILN_POOL,
  logLevel: config.RIVET_LOG_LEVEL,
});
/** Pid of the embedded engine this data dir last ran, if that process is still alive. */
function recordedEnginePid(): number | null {
  try {
    const runtime = JSON.parse(readFileSync(path.join(engineDir, ".rivetkit/var/engine/runtime.json"), "utf8"));
    return typeof runtime.pid === "number" && isProcessAlive(runtime.pid) ? runtime.pid : null;
  } catch {
    return null; // never started here
  }
}

/**
 * An engine left by an earlier run of this instance is reused by RivetKit when it answers /health. Right
 * after a stop it can be busy for a while; RivetKit would then start a second engine on the same
 * database, which fails. So wait for the old one to answer, and replace it only if it never does.
 */
async function settleLeftoverEngine(): Promise<void> {
  const pid = recordedEnginePid();
  if (!pid || config.KILN_ENGINE_ENDPOINT) return;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${engineEndpoint}/health`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not answering yet
    }
    if (!isProcessAlive(pid)) return;
    await sleep(250);
  }
  console.error(`[kiln] the engine left by an earlier run (pid ${pid}) never became healthy; replacing it`);
  await terminate(pid, 5000);
}

await settleLeftoverEngine();
await registry.startAndWait();

const defaultDist = fileURLToPath(new URL("../../frontend/dist", import.meta.url));
const gateway = new GatewayProxy({ engineEndpoint, engineToken, auth: github.auth });
const app = createServer({
  publicUrl: process.env.KILN_PUBLIC_URL || undefined,
  poolName: config.KILN_POOL,
  frontendDist: config.KILN_FRONTEND_DIST ?? defaultDist,
  providers: Object.keys(deps.providers),
  auth: github.publicConfig,
  extend: (app) => {
    gateway.mount(app);
    mountActionsWebhook(app, { secret: sandboxes.actionsCallbackSecret, waiter: sandboxes.actionsWaiter });
    github.mountRoutes(app, { endpoint: engineEndpoint, poolName: config.KILN_POOL });
  },
});
const server = Bun.serve({
  // WebSocket upgrades to the actor gateway are handled before Hono (null: not one of them).
  fetch: async (req, srv) => {
    const upgraded = await gateway.upgrade(req, srv);
    return upgraded === null ? app.fetch(req, srv) : upgraded;
  },
  websocket: gateway.websocket,
  port: config.KILN_PORT,
  hostname: config.KILN_HOST,
  idleTimeout: 120,
});

console.log(
  `[kiln] backend ready in ${Date.now() - started} ms: http://${config.KILN_HOST}:${server.port} ` +
    `(engine ${engineEndpoint}, data ${config.KILN_DATA_DIR})`,
);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) process.exit(1); // second signal: exit now
  stopping = true;
  console.log(`[kiln] ${signal}: shutting down`);
  server.stop(true);
  const drained = await Promise.race([
    registry.shutdown().then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
  ]);
  if (!drained) console.error("[kiln] actors did not drain within 10 s; in-flight steps resume on next start");
  await github.close().then(undefined, (error: unknown) => console.error("[kiln] closing the GitHub client:", errorMessage(error)));
  const closed = await Promise.race([
    sandboxes.close().then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
  ]);
  if (!closed) console.error("[kiln] sandbox providers did not close within 5 s");
  // The embedded engine outlives the backend by RivetKit's design (the next start reuses it), and it must
  // not stop before the actors above have drained their writes into it.
  const enginePid = recordedEnginePid();
  if (!config.KILN_ENGINE_ENDPOINT && enginePid) {
    console.log(`[kiln] the embedded engine (pid ${enginePid}) keeps running for a fast restart; stop it with: kill ${enginePid}`);
  }
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
