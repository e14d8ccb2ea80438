// What the actors need from the outside world, injected so tests pass real or loopback implementations.
import type { ProviderId } from "@kiln/shared";
import type { ActorAuth } from "./auth/actor-auth.ts";
import type { KilnConfig } from "./config.ts";
import type { GitHubAppDriver } from "./integrations/github/app.ts";
import type { SandboxProvider } from "./providers/types.ts";

export interface BackendDeps {
  config: KilnConfig;
  providers: Partial<Record<ProviderId, SandboxProvider>>;
  /** Agent API keys passed to sandbox daemons. Secret. */
  agentEnv: Record<string, string>;
  /** GitHub App integration; absent/null when no App is configured. */
  github?: GitHubDeps | null;
  /** Access control at the actor edge; absent means single-user mode (no checks). */
  auth?: ActorAuth;
}

export interface GitHubDeps {
  driver: GitHubAppDriver;
  /**
   * Multi-user mode (sign-in on): organization id = GitHub account login (lower case), and an org's
   * github-state covers only the installation on that account. Single-user mode: everything the App
   * can see belongs to the "default" organization.
   */
  multiOrg: boolean;
}
