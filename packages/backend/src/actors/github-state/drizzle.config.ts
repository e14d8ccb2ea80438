import { defineConfig } from "rivetkit/db/drizzle";
export default defineConfig({ out: "./src/actors/github-state/drizzle", schema: "./src/actors/github-state/schema.ts" });
