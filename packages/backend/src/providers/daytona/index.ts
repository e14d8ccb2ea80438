export * from "./config.ts";
export * from "./errors.ts";
export * from "./provider.ts";
export * from "./factory.ts";
