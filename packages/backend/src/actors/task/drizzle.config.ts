import { defineConfig } from "rivetkit/db/drizzle";
export default defineConfig({ out: "./src/actors/task/drizzle", schema: "./src/actors/task/schema.ts" });
