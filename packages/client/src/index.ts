export { createKilnClient, toKilnError, type KilnClientOptions } from "./remote.ts";
export type { ConnectionState, KilnClient, Subscription, SubscriptionCallbacks } from "./types.ts";
