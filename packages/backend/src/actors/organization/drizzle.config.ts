import { defineConfig } from "rivetkit/db/drizzle";
export default defineConfig({ out: "./src/actors/organization/drizzle", schema: "./src/actors/organization/schema.ts" });
