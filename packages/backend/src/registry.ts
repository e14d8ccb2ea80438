// The RivetKit registry: Kiln's actors wired to their dependencies.
import { setup } from "rivetkit";
import { TRANSPORT_MAX_MESSAGE_BYTES } from "@kiln/shared";
import { makeGitHubStateActor } from "./actors/github-state/index.ts";
import { makeMaintenanceActor } from "./actors/maintenance/index.ts";
import { makeOrganizationActor } from "./actors/organization/index.ts";
import { makeTaskActor } from "./actors/task/index.ts";
import type { BackendDeps } from "./deps.ts";

export interface EngineOptions {
  /** Start the embedded engine on this port (dev / single machine) … */
  enginePort?: number;
  /** … or join an engine that is already running (production / scale-out). */
  endpoint?: string;
  poolName: string;
  logLevel?: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
}

export function makeRegistry(deps: BackendDeps, engine: EngineOptions) {
  const use = {
    organization: makeOrganizationActor(deps),
    task: makeTaskActor(deps),
    maintenance: makeMaintenanceActor(deps),
    githubState: makeGitHubStateActor(deps),
  };
  const common = {
    use,
    noWelcome: true,
    // RivetKit's default is 64 KiB: inputs inside Kiln's limits (packages/shared/src/limits.ts) need more.
    maxIncomingMessageSize: TRANSPORT_MAX_MESSAGE_BYTES,
    maxOutgoingMessageSize: TRANSPORT_MAX_MESSAGE_BYTES,
    envoy: { poolName: engine.poolName },
    logging: { level: engine.logLevel ?? "warn" },
  } as const;
  return engine.endpoint
    ? setup({ ...common, endpoint: engine.endpoint })
    : setup({ ...common, startEngine: true, engineHost: "127.0.0.1", enginePort: engine.enginePort ?? 7750 });
}

export type KilnRegistry = ReturnType<typeof makeRegistry>;
