// Installs Kiln's offline scripted ACP agent into a sandbox-agent data dir.
// The daemon runs `$XDG_DATA_HOME/sandbox-agent/bin/agent_processes/<agent>-acp` for
// `agent: <agent>`; overriding that launcher lets us serve any built-in agent id offline.
import { randomUUID } from "node:crypto";
import { chmod, mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const SCRIPTED_AGENT_PATH = fileURLToPath(new URL("../../agent/scripted-agent.mjs", import.meta.url));

// Double-quote for sh, escaping the characters that stay special inside double quotes.
const shQuote = (s: string) => `"${s.replace(/(["\\$`])/g, "\\$1")}"`;

// Write via temp file + rename: sh reads scripts lazily, so rewriting a launcher in
// place could corrupt one that a live daemon is executing right now.
async function writeExecutable(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomUUID()}.tmp`;
  await writeFile(tmp, content, { mode: 0o755 });
  await chmod(tmp, 0o755); // writeFile's mode is subject to umask
  await rename(tmp, file);
}

export async function installScriptedAgentLauncher(xdgDataHome: string, agentId = "mock"): Promise<void> {
  const binDir = path.join(xdgDataHome, "sandbox-agent", "bin");
  // process.execPath is node or bun, whichever runs us; both can run the .mjs.
  await writeExecutable(
    path.join(binDir, "agent_processes", `${agentId}-acp`),
    `#!/bin/sh\nexec ${shQuote(process.execPath)} ${shQuote(SCRIPTED_AGENT_PATH)} "$@"\n`,
  );
  // Real agents only count as installed when their native binary also exists; a stub suffices
  // (the daemon never runs it once the launcher is present). `mock` has no native binary.
  if (agentId !== "mock") {
    await writeExecutable(
      path.join(binDir, agentId),
      `#!/bin/sh\n# stub so sandbox-agent treats "${agentId}" as installed; Kiln runs the scripted agent instead\necho "kiln-scripted-agent 0.0.0"\n`,
    );
  }
}
