import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";
import { kilnGlobalSetup, kilnReporters } from "../../vitest.reporters.ts";

export default defineConfig({
  plugins: [react()],
  // Relative asset URLs: the built UI can be served from any path (static server, backend).
  base: "./",
  // One bundle (React, zod contracts, the RivetKit client) is fine for a self-hosted workbench.
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1024 },
  server: {
    host: "127.0.0.1",
    port: Number(process.env.KILN_FRONTEND_PORT ?? 5173),
    strictPort: true,
    // `npm run dev:ui`: the page's origin is this dev server, so forward the backend's routes.
    // ws: actor connections go through the backend's gateway proxy at /v1/rivet.
    proxy: { "/v1": { target: `http://127.0.0.1:${process.env.KILN_PORT ?? 7741}`, ws: true } },
  },
  preview: { host: "127.0.0.1", port: Number(process.env.KILN_FRONTEND_PORT ?? 4173), strictPort: true },
  test: {
    include: ["test/**/*.test.ts"],
    // Browser tests build the UI and drive Chromium: give them room.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    globalSetup: kilnGlobalSetup,
    ...kilnReporters("frontend"),
  },
});
