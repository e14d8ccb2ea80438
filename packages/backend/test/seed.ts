// Test-only: a caller that skips @kiln/client (the raw RivetKit client), to reach the env-gated
// testSeedTranscript hook and to prove the backend enforces the input limits on its own.
import { createClient } from "rivetkit/client";
import type { Backend } from "./harness.ts";

type RawCall = (input: unknown) => Promise<unknown>;
export interface RawClient {
  organization: { getOrCreate(key: string[]): Record<string, RawCall> };
  task: { get(key: string[]): Record<string, RawCall> };
  dispose(): Promise<void>;
}

export async function rawClient(backend: Backend): Promise<RawClient> {
  const config = (await (await fetch(`${backend.url}/v1/config`)).json()) as { rivetEndpoint: string; poolName: string };
  return createClient({ endpoint: config.rivetEndpoint, poolName: config.poolName, devtools: false } as never) as never;
}

/** Append `count` agent messages to a session (needs KILN_TEST_SEED_TRANSCRIPT=true on the backend). */
export async function seedTranscript(raw: RawClient, orgId: string, taskId: string, sessionId: string, count: number, textChars: number) {
  const handle = raw.task.get(["org", orgId, "task", taskId]);
  for (let done = 0; done < count; done += 2_500) {
    await handle.testSeedTranscript!({ sessionId, count: Math.min(2_500, count - done), textChars });
  }
}
