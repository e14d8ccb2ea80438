// Sign-in and access control, all in one place: signed session tokens, the auth config, the actor-edge
// checks and the HTTP routes.
export * from "./tokens.ts";
export * from "./config.ts";
export * from "./actor-auth.ts";
export * from "./routes.ts";
