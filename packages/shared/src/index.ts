export * from "./domain.ts";
export * from "./inputs.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./naming.ts";
export * from "./status.ts";
export * from "./github.ts";
export * from "./auth.ts";
