// The Kiln sandbox image, declared in code with the Daytona SDK's Image builder. Everything a task
// needs is installed at build time, so nothing downloads when a task starts:
//   - git, curl, jq on node:22 (Debian bookworm slim)
//   - the sandbox-agent 0.4.2 daemon, pinned by version and sha256
//   - the claude and codex agents (`sandbox-agent install-agent`)
//   - Kiln's scripted ACP agent, installed as the `mock` agent's launcher
// Change this file → bump the snapshot version → `bun daytona/create-snapshot.ts --name kiln-sandbox:<v>`.
import { readFileSync } from "node:fs";
import { Image } from "../packages/backend/src/providers/daytona/sdk.ts";

export const BASE_IMAGE = "node:22-bookworm-slim";
export const SANDBOX_AGENT_VERSION = "0.4.2";
/** sha256 of @sandbox-agent/cli-linux-x64@0.4.2 bin/sandbox-agent (checked by the snapshot test too). */
export const SANDBOX_AGENT_SHA256 = "bab098abef874ade481aa7b50463662814fbf27294399f545307fedb638f029b";
/** Pre-installed agents; `mock` is Kiln's scripted agent (offline, deterministic). */
export const PREINSTALLED_AGENTS = ["claude", "codex"] as const;

/** sandbox-agent keeps installed agents under $XDG_DATA_HOME/sandbox-agent. Shared, so any sandbox user finds them. */
export const KILN_DATA_HOME = "/opt/kiln/data";
export const SCRIPTED_AGENT_IN_IMAGE = "/opt/kiln/scripted-agent.mjs";
export const MOCK_LAUNCHER_IN_IMAGE = `${KILN_DATA_HOME}/sandbox-agent/bin/agent_processes/mock-acp`;

export const SCRIPTED_AGENT_SOURCE = new URL("../packages/backend/agent/scripted-agent.mjs", import.meta.url);

export interface KilnImageOptions {
  /** Override the scripted agent's source (tests). */
  scriptedAgent?: string | Buffer;
}

/**
 * The image definition. The scripted agent travels inside the Dockerfile (base64 in a RUN step)
 * rather than via Image.addLocalFile: addLocalFile uploads build context to Daytona's object
 * storage (S3 push credentials), which adds a moving part for one 10 KB file. The Dockerfile text
 * then fully determines the image, and it changes whenever the agent file changes.
 */
export function kilnImage(options: KilnImageOptions = {}): Image {
  const agent = options.scriptedAgent ?? readFileSync(SCRIPTED_AGENT_SOURCE);
  const agentB64 = Buffer.from(agent).toString("base64");
  const npmBin = `@sandbox-agent/cli-linux-x64@${SANDBOX_AGENT_VERSION}`;
  return Image.base(BASE_IMAGE)
    .runCommands(
      "apt-get update && apt-get install -y --no-install-recommends git curl ca-certificates jq " +
        "&& rm -rf /var/lib/apt/lists/*",
      // The native binary straight from npm (registry integrity), then checked against our pin.
      // Copy it out of the npm wrapper: killing the node wrapper would orphan the daemon.
      `npm install -g --no-fund --no-audit ${npmBin} ` +
        `&& install -m 0755 "$(npm root -g)/@sandbox-agent/cli-linux-x64/bin/sandbox-agent" /usr/local/bin/sandbox-agent ` +
        `&& npm uninstall -g @sandbox-agent/cli-linux-x64 ` +
        `&& echo "${SANDBOX_AGENT_SHA256}  /usr/local/bin/sandbox-agent" | sha256sum -c - ` +
        `&& sandbox-agent --version`,
    )
    .env({
      XDG_DATA_HOME: KILN_DATA_HOME,
      // Fail fast (404 agent_not_installed) instead of downloading an agent at task time.
      SANDBOX_AGENT_REQUIRE_PREINSTALL: "1",
    })
    .runCommands(
      `mkdir -p ${KILN_DATA_HOME} && ${PREINSTALLED_AGENTS.map((a) => `sandbox-agent install-agent ${a}`).join(" && ")}`,
      `echo ${agentB64} | base64 -d > ${SCRIPTED_AGENT_IN_IMAGE}`,
      `mkdir -p $(dirname ${MOCK_LAUNCHER_IN_IMAGE}) ` +
        `&& printf '#!/bin/sh\\nexec node ${SCRIPTED_AGENT_IN_IMAGE} "$@"\\n' > ${MOCK_LAUNCHER_IN_IMAGE} ` +
        `&& chmod 0755 ${MOCK_LAUNCHER_IN_IMAGE}`,
      // Daytona may run the sandbox as a non-root user; the daemon writes logs under XDG_DATA_HOME.
      "chmod -R a+rwX /opt/kiln",
    );
}

/** The Dockerfile text Daytona builds (what the snapshot test and README show). */
export function kilnDockerfile(options: KilnImageOptions = {}): string {
  return kilnImage(options).dockerfile;
}
