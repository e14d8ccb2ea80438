// Builds the sandbox providers this backend offers from its validated configuration: `local` always,
// `daytona` when DAYTONA_API_KEY is set (loadDaytonaConfig). One process-wide ActionsCallbackWaiter is
// shared by the Daytona provider (GitHub Actions create path) and `POST /v1/webhooks/actions`.
import { type ProviderId, errorMessage } from "@kiln/shared";
import type { KilnConfig } from "../config.ts";
import { ActionsCallbackWaiter } from "../integrations/github-actions/callbacks.ts";
import { loadDaytonaConfig } from "./daytona/config.ts";
import type { DaytonaProviderDeps } from "./daytona/factory.ts";
import { resolveIsolation } from "./local/isolation.ts";
import { LocalProvider } from "./local/provider.ts";
import type { SandboxProvider } from "./types.ts";

export interface BuildProvidersOptions {
  /** Fresh clone credentials for remote sandboxes (e.g. a GitHub App installation token). */
  gitCredentials?: DaytonaProviderDeps["gitCredentials"];
  /** Operational log lines of the Daytona provider (never contain secrets). */
  log?: DaytonaProviderDeps["log"];
}

export interface BuiltProviders {
  providers: Partial<Record<ProviderId, SandboxProvider>>;
  /** Shared with the webhook route: the provider waits here for the workflow's signed callback. */
  actionsWaiter: ActionsCallbackWaiter;
  /** HMAC secret of `POST /v1/webhooks/actions`; null when the Actions create path is off (every callback is then 401). */
  actionsCallbackSecret: string | null;
  /** Close every provider's client resources (Daytona's SDK connection). Never throws; reports failures. */
  close(): Promise<void>;
}

export async function buildProviders(
  config: KilnConfig,
  env: Record<string, string | undefined> = process.env,
  options: BuildProvidersOptions = {},
): Promise<BuiltProviders> {
  const actionsWaiter = new ActionsCallbackWaiter();
  const providers: Partial<Record<ProviderId, SandboxProvider>> = {
    local: new LocalProvider({
      dataDir: config.KILN_DATA_DIR,
      createDelayMs: config.KILN_TEST_CREATE_SANDBOX_DELAY_MS,
      // Sign-in (GitHub OAuth) means several users: refuse to run their sandboxes unisolated.
      isolation: resolveIsolation(config.KILN_SANDBOX_ISOLATION, Boolean(env.GITHUB_CLIENT_ID && env.GITHUB_CLIENT_SECRET)),
    }),
  };
  // Throws (naming the variable, never its value) when the Daytona settings are present but invalid:
  // a half-configured provider should stop the backend at start-up, not fail the first task.
  const daytona = loadDaytonaConfig(env);
  if (daytona) {
    const deps: DaytonaProviderDeps = { actionsWaiter };
    if (options.gitCredentials) deps.gitCredentials = options.gitCredentials;
    if (options.log) deps.log = options.log;
    // Loaded only when enabled: the SDK adds ~200 ms to start-up.
    const { createDaytonaProvider } = await import("./daytona/factory.ts");
    providers.daytona = createDaytonaProvider(daytona, deps);
  }
  return {
    providers,
    actionsWaiter,
    actionsCallbackSecret: daytona?.actions?.callbackSecret ?? null,
    async close() {
      const failures: string[] = [];
      for (const [id, provider] of Object.entries(providers)) {
        if (!provider?.close) continue;
        try {
          await provider.close();
        } catch (error) {
          failures.push(`${id}: ${errorMessage(error)}`);
        }
      }
      if (failures.length) console.error(`[kiln] closing sandbox providers failed: ${failures.join("; ")}`);
    },
  };
}
