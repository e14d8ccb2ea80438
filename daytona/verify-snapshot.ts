#!/usr/bin/env bun
// Check that a snapshot exists and is active, and print its details. Exit 0 only when active.
//   DAYTONA_API_KEY=… [DAYTONA_API_URL=…] bun daytona/verify-snapshot.ts --name kiln-sandbox:0.1.0 [--json]
import { DaytonaNotFoundError, SnapshotState } from "../packages/backend/src/providers/daytona/sdk.ts";
import { clientFromEnv, parseArgs, runScript } from "./cli.ts";

const USAGE = "usage: bun daytona/verify-snapshot.ts --name kiln-sandbox:<version> [--json]";

await runScript(USAGE, async () => {
  const { name, flags } = parseArgs(process.argv.slice(2));
  const daytona = clientFromEnv();
  try {
    let snapshot: Awaited<ReturnType<typeof daytona.snapshot.get>>;
    try {
      snapshot = await daytona.snapshot.get(name);
    } catch (error) {
      if (error instanceof DaytonaNotFoundError) {
        console.error(`error: snapshot ${name} not found; create it with bun daytona/create-snapshot.ts --name ${name}`);
        return 1;
      }
      throw error;
    }
    const details = {
      name: snapshot.name,
      id: snapshot.id,
      state: snapshot.state,
      imageName: snapshot.imageName ?? null,
      cpu: snapshot.cpu,
      memoryGiB: snapshot.mem,
      diskGiB: snapshot.disk,
      regions: snapshot.regionIds ?? [],
      createdAt: snapshot.createdAt,
      updatedAt: snapshot.updatedAt,
      errorReason: snapshot.errorReason,
    };
    if (flags.get("json") === true) console.log(JSON.stringify(details, null, 2));
    else for (const [key, value] of Object.entries(details)) console.log(`${key.padEnd(11)} ${Array.isArray(value) ? value.join(",") : String(value)}`);
    if (snapshot.state !== SnapshotState.ACTIVE) {
      console.error(`error: snapshot ${name} is ${snapshot.state}, not active${snapshot.errorReason ? `: ${snapshot.errorReason}` : ""}`);
      return 1;
    }
    console.log(`OK: snapshot ${name} is active`);
    return 0;
  } finally {
    await daytona[Symbol.asyncDispose]();
  }
});
