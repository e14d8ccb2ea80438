// The floor for Kiln's actor figures: a bare RivetKit actor (no database, no workflow) served the same
// way as the backend (own process, own embedded engine). Started by scripts/bench.ts.
import { actor, event, setup } from "rivetkit";
import { setNativeEnv } from "../packages/backend/src/util/native-env.ts";

const enginePort = Number(process.env.BENCH_ENGINE_PORT);
setNativeEnv("RIVETKIT_STORAGE_PATH", String(process.env.BENCH_STORAGE));
setNativeEnv("RIVET_RUN_SERVICES", "0");

const bare = actor({
  state: { n: 0 },
  events: { bumped: event<number>() },
  actions: {
    bump: (c) => {
      c.state.n += 1;
      c.broadcast("bumped", Date.now());
      return c.state.n;
    },
  },
});
const registry = setup({
  use: { bare },
  startEngine: true,
  engineHost: "127.0.0.1",
  enginePort,
  noWelcome: true,
  envoy: { poolName: "bench-floor" },
  logging: { level: "error" },
});
await registry.startAndWait();
console.log("ready");
