// The environment every local-sandbox process gets (daemon, its agents, exec/runCode): an explicit
// allow-list, never the backend's own environment. The backend holds Kiln's secrets (session secret,
// GitHub App key, webhook secret, Daytona key…) and a user's task must not be able to read them.
import { AGENT_ENV_KEYS } from "../../config.ts";

/** Host variables passed through unchanged when set (locale and terminal only). */
const PASS_THROUGH = ["LANG", "LANGUAGE", "TERM", "TZ"] as const;

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface SandboxEnvOptions {
  /** HOME of the sandbox's processes: a per-sandbox directory, never the backend user's home. */
  home: string;
  /** XDG_DATA_HOME: where sandbox-agent finds installed agents and launchers. */
  agentHome: string;
  /** Agent credentials for this sandbox; only names in AGENT_ENV_KEYS are kept. */
  credentials?: Record<string, string>;
  /** Extra non-secret variables set by Kiln itself (sandbox-agent settings). */
  extra?: Record<string, string>;
  host?: Record<string, string | undefined>;
}

export function sandboxEnv(options: SandboxEnvOptions): Record<string, string> {
  const host = options.host ?? process.env;
  const env: Record<string, string> = {
    // The backend's PATH (the toolchain, e.g. node for the scripted agent) is not secret.
    PATH: host.PATH || DEFAULT_PATH,
    HOME: options.home,
    XDG_DATA_HOME: options.agentHome,
  };
  for (const key of PASS_THROUGH) {
    const value = host[key];
    if (value) env[key] = value;
  }
  for (const [key, value] of Object.entries(host)) {
    if (key.startsWith("LC_") && value) env[key] = value;
  }
  const allowed = new Set<string>(AGENT_ENV_KEYS);
  for (const [key, value] of Object.entries(options.credentials ?? {})) {
    if (allowed.has(key) && value) env[key] = value;
  }
  return { ...env, ...options.extra };
}
