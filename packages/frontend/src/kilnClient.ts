// Picks the KilnClient the UI talks to. The UI never reaches the backend any other way.
import { type KilnClient, createKilnClient } from "@kiln/client";
import { createMockKilnClient } from "@kiln/client/mock";

/**
 * The organization every view works in. Single-user mode: "default". With sign-in on, the Root picks
 * one of the session's orgs before the App renders (setOrgId); ES modules hand importers the live value.
 */
export let ORG_ID = "default";

export function setOrgId(orgId: string): void {
  ORG_ID = orgId;
}

export interface ClientChoice {
  client: KilnClient;
  mode: "mock" | "remote";
  /** Backend URL in remote mode. */
  endpoint: string | null;
}

/**
 * `?mock=1` or VITE_KILN_MOCK=1 → in-memory mock (`&mockDelay=<ms>` sets its step delay);
 * otherwise the backend at `?endpoint=` or this page's origin.
 */
export function chooseClient(location: Location): ClientChoice {
  const params = new URLSearchParams(location.search);
  if (params.get("mock") === "1" || import.meta.env.VITE_KILN_MOCK === "1") {
    const delay = Number(params.get("mockDelay"));
    return { client: createMockKilnClient(Number.isFinite(delay) && delay > 0 ? { stepDelayMs: delay } : {}), mode: "mock", endpoint: null };
  }
  const endpoint = params.get("endpoint") || location.origin;
  return { client: createKilnClient({ endpoint }), mode: "remote", endpoint };
}
