export * from "./callbacks.ts";
export * from "./dispatch.ts";
export * from "./route.ts";
