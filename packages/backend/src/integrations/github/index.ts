// GitHub integration: config, App driver (REST via @octokit/app), webhooks, token-authenticated git.
export * from "./config.ts";
export * from "./errors.ts";
export * from "./app.ts";
export * from "./webhooks.ts";
export * from "./git.ts";
