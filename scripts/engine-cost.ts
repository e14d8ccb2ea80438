// Engine CPU per RivetKit operation (decision 0009). Under load the Rivet Engine process, not the
// backend, is what saturates; this probe prints what each kind of actor operation costs it, so a change
// can be judged by the engine work it adds or removes. Not a test; figures vary run to run.
//   npm run engine-cost      (spawns its own engine on a random port; ~1.5 min)
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { actor, setup } from "rivetkit";
import { createClient } from "rivetkit/client";
import { db } from "rivetkit/db/drizzle";
import { integer, sqliteTable, text } from "rivetkit/db/drizzle";
import { setNativeEnv } from "../packages/backend/src/util/native-env.ts";

const rows = sqliteTable("rows", { id: integer("id").primaryKey({ autoIncrement: true }), v: text("v").notNull() });
const migrations = {
  journal: { entries: [{ idx: 0, when: 1, tag: "0000_init", breakpoints: true }] },
  migrations: { m0000: "CREATE TABLE rows (id integer primary key autoincrement, v text not null);" },
};

async function serve(enginePort: number, storage: string): Promise<void> {
  setNativeEnv("RIVETKIT_STORAGE_PATH", storage);
  setNativeEnv("RIVET_RUN_SERVICES", "0");
  const probe = actor({
    db: db({ schema: { rows }, migrations } as never),
    options: { sleepTimeout: 20_000 },
    actions: {
      noop: () => 1,
      write: async (c, n: number, inTransaction: boolean) => {
        const database = c.db as unknown as {
          insert(t: typeof rows): { values(v: { v: string }): Promise<unknown> };
          transaction(fn: (tx: unknown) => Promise<void>, o: never): Promise<void>;
        };
        const insert = (d: typeof database) => d.insert(rows).values({ v: "x".repeat(200) });
        if (inTransaction) {
          await database.transaction(async (tx) => {
            for (let i = 0; i < n; i++) await insert(tx as typeof database);
          }, { name: "probe" } as never);
        } else {
          for (let i = 0; i < n; i++) await insert(database);
        }
      },
      cronCycle: async (c) => {
        await c.cron.every({ name: "w", interval: 5_000, action: "noop" });
        await c.cron.delete("w");
      },
    },
  });
  const registry = setup({
    use: { probe },
    startEngine: true,
    engineHost: "127.0.0.1",
    enginePort,
    noWelcome: true,
    envoy: { poolName: "engine-cost" },
    logging: { level: "error" },
  });
  await registry.startAndWait();
  console.log("ready");
}

/** CPU time (ms) a process has used so far. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * (1000 / 100); // utime + stime, in clock ticks (100 Hz)
}

interface ProbeHandle {
  noop(): Promise<number>;
  write(n: number, inTransaction: boolean): Promise<void>;
  cronCycle(): Promise<void>;
  resolve(): Promise<string>;
  connect(): ProbeHandle & { dispose(): Promise<void> };
}
interface ProbeClient {
  probe: {
    create(key: string[]): Promise<ProbeHandle>;
    get(key: string[]): ProbeHandle;
    getOrCreate(key: string[]): ProbeHandle;
    getForId(id: string): ProbeHandle;
  };
  dispose(): Promise<void>;
}

async function measure(): Promise<void> {
  const enginePort = 47000 + Math.floor(Math.random() * 2000);
  const storage = mkdtempSync(path.join(os.tmpdir(), "kiln-engine-cost-"));
  const server = spawn("bun", [import.meta.filename, "--serve", String(enginePort), storage], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("probe server did not start in 60 s")), 60_000);
    server.stdout?.on("data", (d: Buffer) => d.toString().includes("ready") && (clearTimeout(timer), resolve()));
    server.once("exit", (code) => reject(new Error(`probe server exited (${code})`)));
  });
  const enginePid = (JSON.parse(readFileSync(path.join(storage, ".rivetkit/var/engine/runtime.json"), "utf8")) as { pid: number }).pid;
  const client = createClient({ endpoint: `http://127.0.0.1:${enginePort}`, poolName: "engine-cost" } as never) as unknown as ProbeClient;
  const results: Array<[string, number, number]> = [];
  const phase = async (name: string, n: number, work: () => Promise<void>) => {
    const before = cpuMs(enginePid);
    const t0 = performance.now();
    await work();
    results.push([name, (cpuMs(enginePid) - before) / n, (performance.now() - t0) / n]);
  };
  try {
    const main = client.probe.getOrCreate(["main"]);
    await main.noop();
    await phase("stateless action, getOrCreate(key)", 60, async () => {
      for (let i = 0; i < 60; i++) await main.noop();
    });
    const byKey = client.probe.get(["main"]);
    await phase("stateless action, get(key)", 60, async () => {
      for (let i = 0; i < 60; i++) await byKey.noop();
    });
    const byId = client.probe.getForId(await main.resolve());
    await phase("stateless action, getForId(id)", 60, async () => {
      for (let i = 0; i < 60; i++) await byId.noop();
    });
    const conn = main.connect();
    await conn.noop();
    await phase("action over an open WebSocket", 100, async () => {
      for (let i = 0; i < 100; i++) await conn.noop();
    });
    await phase("autocommit insert (per row)", 300, () => conn.write(300, false));
    await phase("6 inserts in one transaction (per transaction)", 50, async () => {
      for (let i = 0; i < 50; i++) await conn.write(6, true);
    });
    await phase("cron.every + cron.delete", 20, async () => {
      for (let i = 0; i < 20; i++) await conn.cronCycle();
    });
    await conn.dispose();
    const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    await phase("1 s idle (one actor awake)", 4, () => wait(4_000));
    // Last, so the actors it leaves awake do not weigh on the figures above.
    await phase("actor create + one action", 30, async () => {
      for (let i = 0; i < 30; i++) await (await client.probe.create([`c-${i}`])).noop();
    });
    await wait(3_000); // let the creates' own engine work settle
    await phase("an awake actor, per second (30 measured)", 4 * 30, () => wait(4_000));
    await phase("an actor going to sleep (30 measured, idle included)", 30, () => wait(15_000));
  } finally {
    await client.dispose();
    server.kill("SIGKILL");
    try {
      process.kill(enginePid, "SIGKILL");
    } catch {
      // already gone
    }
    rmSync(storage, { recursive: true, force: true });
  }
  console.log("| operation | engine CPU | wall |\n|---|---|---|");
  for (const [name, cpu, wall] of results) console.log(`| ${name} | ${cpu.toFixed(1)} ms | ${wall.toFixed(1)} ms |`);
}

const [flag, port, storage] = process.argv.slice(2);
if (flag === "--serve") await serve(Number(port), String(storage));
else {
  await measure();
  process.exit(0);
}
