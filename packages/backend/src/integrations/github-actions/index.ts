export * from "./callbacks.ts";
export * from "./dispatch.ts";
