// Test/tooling entry point: call any action of any Kiln actor with arbitrary arguments and key, through
// the same path the typed client uses (Kiln's /v1/config → its /v1/rivet gateway proxy). The fuzz test
// uses it to throw malformed input at every public action; errors come back as typed KilnErrors.
import { KilnError } from "@kiln/shared";
import { createClient } from "rivetkit/client";
import { toKilnError } from "./remote.ts";

export type RawActorName = "organization" | "task" | "githubState" | "maintenance";

export interface RawActorCaller {
  /** `getOrCreate` (organization, githubState, maintenance) or `get` (task) the key, then call `action`. */
  call(actor: RawActorName, key: unknown[], action: string, args: unknown[]): Promise<unknown>;
  dispose(): Promise<void>;
}

type Handle = Record<string, (...args: unknown[]) => Promise<unknown>>;
type Accessor = { get(key: unknown, opts?: unknown): Handle; getOrCreate(key: unknown, opts?: unknown): Handle };

export async function createRawActorCaller(options: { endpoint: string; token?: string }): Promise<RawActorCaller> {
  const response = await fetch(new URL("/v1/config", options.endpoint));
  if (!response.ok) throw new KilnError("unavailable", `GET /v1/config answered ${response.status}`);
  const config = (await response.json()) as { rivetEndpoint: string; poolName: string };
  const client = createClient({
    endpoint: new URL(config.rivetEndpoint, options.endpoint).toString(),
    poolName: config.poolName,
    devtools: false,
  } as Parameters<typeof createClient>[0]) as unknown as Record<RawActorName, Accessor> & { dispose(): Promise<void> };
  const opts = options.token ? { params: { token: options.token } } : {};
  return {
    async call(actor, key, action, args) {
      const accessor = client[actor];
      const handle = actor === "task" ? accessor.get(key, opts) : accessor.getOrCreate(key, opts);
      try {
        return await handle[action]!(...args);
      } catch (error) {
        throw toKilnError(error);
      }
    },
    dispose: () => client.dispose(),
  };
}
