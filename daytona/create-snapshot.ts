#!/usr/bin/env bun
// Build the Kiln sandbox image (daytona/image.ts) into a named Daytona snapshot, streaming the
// build log. Snapshot names are immutable versions: bump the version for every image change.
//   DAYTONA_API_KEY=… [DAYTONA_API_URL=…] [DAYTONA_TARGET=us] \
//     bun daytona/create-snapshot.ts --name kiln-sandbox:0.1.0 [--cpu 2 --memory 4 --disk 10] [--timeout 1800]
import { DaytonaNotFoundError, SnapshotState } from "../packages/backend/src/providers/daytona/sdk.ts";
import { clientFromEnv, numberFlag, parseArgs, runScript } from "./cli.ts";
import { kilnImage } from "./image.ts";

const USAGE =
  "usage: bun daytona/create-snapshot.ts --name kiln-sandbox:<version> [--cpu N] [--memory GiB] [--disk GiB] [--timeout seconds]";

await runScript(USAGE, async () => {
  const { name, flags } = parseArgs(process.argv.slice(2));
  const cpu = numberFlag(flags, "cpu") ?? 2;
  const memory = numberFlag(flags, "memory") ?? 4;
  const disk = numberFlag(flags, "disk") ?? 10;
  const timeout = numberFlag(flags, "timeout") ?? 1800;
  const daytona = clientFromEnv();
  try {
    // Refuse to overwrite: a snapshot name is a version that running tasks may depend on.
    try {
      const existing = await daytona.snapshot.get(name);
      console.error(`error: snapshot ${name} already exists (state ${existing.state}); bump the version instead`);
      return 1;
    } catch (error) {
      if (!(error instanceof DaytonaNotFoundError)) throw error;
    }
    console.log(`Creating snapshot ${name} (cpu ${cpu}, memory ${memory} GiB, disk ${disk} GiB)`);
    const snapshot = await daytona.snapshot.create(
      { name, image: kilnImage(), resources: { cpu, memory, disk } },
      { onLogs: (line: string) => console.log(line), timeout },
    );
    if (snapshot.state !== SnapshotState.ACTIVE) {
      console.error(`error: snapshot ${name} finished in state ${snapshot.state}: ${snapshot.errorReason ?? "no reason given"}`);
      return 1;
    }
    console.log(`Snapshot ${name} is active (id ${snapshot.id}).`);
    console.log(`Next: bun daytona/verify-snapshot.ts --name ${name} && set DAYTONA_SNAPSHOT_NAME=${name}`);
    return 0;
  } finally {
    await daytona[Symbol.asyncDispose]();
  }
});
