// What the actors need from the outside world, injected so tests pass real or loopback implementations.
import type { ProviderId } from "@kiln/shared";
import type { KilnConfig } from "./config.ts";
import type { SandboxProvider } from "./providers/types.ts";

export interface BackendDeps {
  config: KilnConfig;
  providers: Partial<Record<ProviderId, SandboxProvider>>;
  /** Agent API keys passed to sandbox daemons. Secret. */
  agentEnv: Record<string, string>;
}
