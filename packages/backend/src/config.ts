// Backend configuration from the environment, validated once at start-up.
import os from "node:os";
import path from "node:path";
import { AgentIdSchema, ProviderIdSchema } from "@kiln/shared";
import { z } from "zod";

const port = z.coerce.number().int().min(1).max(65535);
const bool = z
  .enum(["0", "1", "true", "false", ""])
  .optional()
  .transform((v) => v === "1" || v === "true");

export const ConfigSchema = z.object({
  /** HTTP port of the Kiln server (API config, webhooks, health, built frontend). */
  KILN_PORT: port.default(7741),
  /** Bind address. Loopback unless the operator opts in. */
  KILN_HOST: z.string().min(1).default("127.0.0.1"),
  /** Everything Kiln stores: engine database, repo caches, sandboxes. */
  KILN_DATA_DIR: z.string().min(1).default(path.join(os.homedir(), ".local", "share", "kiln")),
  /** Port of the embedded Rivet Engine (it also takes +1 and +10). Distinct per instance. */
  KILN_ENGINE_PORT: port.default(7750),
  /** Use an engine that is already running (production / scale-out) instead of starting one. */
  KILN_ENGINE_ENDPOINT: z.string().url().optional(),
  /** The engine's admin token (`auth.admin_token`); required with KILN_ENGINE_ENDPOINT. The embedded
   * engine gets one generated once and kept 0600 in the data dir. Never sent to clients. */
  KILN_ENGINE_TOKEN: z.string().min(16, "KILN_ENGINE_TOKEN must be at least 16 characters").optional(),
  /** Envoy pool name; distinct per app/test so runners never get another app's actors. */
  KILN_POOL: z.string().min(1).default("kiln"),
  KILN_DEFAULT_AGENT: AgentIdSchema.default("mock"),
  KILN_DEFAULT_PROVIDER: ProviderIdSchema.default("local"),
  /** Directory of the built frontend to serve; empty disables. */
  KILN_FRONTEND_DIST: z.string().optional(),
  /**
   * Local sandbox isolation: `bubblewrap` (default when bwrap works) or `none` (single-user only;
   * refused when sign-in is on). See README "Security".
   */
  KILN_SANDBOX_ISOLATION: z.enum(["bubblewrap", "none"]).optional(),
  /** Keep sandboxes after archive for debugging. */
  KEEP_SANDBOX: bool,
  /** Step deadlines (ms). */
  KILN_STEP_TIMEOUT_MS: z.coerce.number().int().min(1000).default(120_000),
  KILN_CREATE_SANDBOX_TIMEOUT_MS: z.coerce.number().int().min(1000).default(300_000),
  KILN_PROMPT_TIMEOUT_MS: z.coerce.number().int().min(1000).default(30 * 60_000),
  /** Test hook: pause inside create-sandbox so a test can kill the backend mid-step. */
  KILN_TEST_CREATE_SANDBOX_DELAY_MS: z.coerce.number().int().min(0).default(0),
  /** Test hook: make the next N create-sandbox attempts fail (proves retry). */
  KILN_TEST_FAIL_CREATE_SANDBOX_MARKER: z.string().optional(),
  /** Test hook: enable the task actor's testSeedTranscript action (bulk transcript rows). Off by default. */
  KILN_TEST_SEED_TRANSCRIPT: bool,
  /** Watchdog cadence that re-wakes task actors after a crash. */
  KILN_WATCHDOG_INTERVAL_MS: z.coerce.number().int().min(500).default(5000),
  /**
   * A task actor with no connection, turn or step in flight sleeps after this long. Every awake actor
   * costs the engine CPU each second (≈3.7 ms/s measured), so idle tasks should not linger; waking one
   * again costs one actor start (research/decisions/0009-engine-cost-budget.md).
   */
  KILN_TASK_SLEEP_MS: z.coerce.number().int().min(1000).default(15_000),
  /** How often the maintenance actor deletes orphaned sandboxes (RivetKit cron minimum: 5 s). */
  KILN_REAPER_INTERVAL_MS: z.coerce.number().int().min(5000).default(10 * 60_000),
  RIVET_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("warn"),
});

export type KilnConfig = z.infer<typeof ConfigSchema>;

export function loadConfig(env: Record<string, string | undefined> = process.env): KilnConfig {
  const result = ConfigSchema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid Kiln configuration:\n${lines.join("\n")}`);
  }
  return { ...result.data, KILN_DATA_DIR: path.resolve(result.data.KILN_DATA_DIR) };
}

/** API keys the agent daemons need, passed through from the backend's environment. Never logged. */
export const AGENT_ENV_KEYS = [
  "ANTHROPIC_API_KEY",
  "CLAUDE_API_KEY",
  "CLAUDE_CODE_OAUTH_TOKEN",
  "OPENAI_API_KEY",
  "CODEX_API_KEY",
  "AMP_API_KEY",
  "OPENCODE_API_KEY",
] as const;

export function agentEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of AGENT_ENV_KEYS) {
    const value = env[key];
    if (value) out[key] = value;
  }
  return out;
}
