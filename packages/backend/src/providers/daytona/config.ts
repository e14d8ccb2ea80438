// Daytona provider configuration from the environment, validated with zod. Returns null when no
// DAYTONA_API_KEY is set so the backend can simply not offer the provider.
import { z } from "zod";

export const CREATE_MODES = ["api", "actions", "hybrid"] as const;
export type CreateMode = (typeof CREATE_MODES)[number];

const bool = z
  .enum(["0", "1", "true", "false", ""])
  .optional()
  .transform((v) => v === "1" || v === "true");

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

export const DaytonaEnvSchema = z
  .object({
    DAYTONA_API_KEY: z.string().min(1, "DAYTONA_API_KEY is required"),
    DAYTONA_API_URL: z.string().url().default("https://app.daytona.io/api"),
    DAYTONA_TARGET: optionalString,
    /** Pre-built snapshot every task sandbox starts from (see daytona/README.md). */
    DAYTONA_SNAPSHOT_NAME: z.string().min(1).default("kiln-sandbox:0.1.0"),
    /** Build the image on demand instead of using the snapshot (slow; development only). */
    DAYTONA_USE_DECLARATIVE_IMAGE: bool,
    DAYTONA_CREATE_MODE: z.enum(CREATE_MODES).default("api"),
    /** Idle minutes before Daytona stops a sandbox whose task is no longer live (see provider.ts). */
    DAYTONA_AUTO_STOP_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(30),
    /** HMAC secret shared with the GitHub Actions workflow that creates sandboxes. */
    KILN_ACTIONS_CALLBACK_SECRET: optionalString,
    /** Public URL of Kiln's `POST /v1/webhooks/actions` (the runner must reach it). */
    KILN_ACTIONS_CALLBACK_URL: optionalString,
    /** `owner/name` of the repository holding daytona/github-actions/create-sandbox.yml. */
    KILN_ACTIONS_REPO: optionalString,
    KILN_ACTIONS_WORKFLOW: z.string().min(1).default("create-sandbox.yml"),
    KILN_ACTIONS_REF: z.string().min(1).default("main"),
    /** Token allowed to dispatch workflows (fine-grained: actions:write on KILN_ACTIONS_REPO). */
    KILN_ACTIONS_GITHUB_TOKEN: optionalString,
    GITHUB_API_URL: z.string().url().default("https://api.github.com"),
    /** Deadline for the Actions path: dispatch → runner → CLI → callback (seed: 45–105 s). */
    KILN_ACTIONS_TIMEOUT_MS: z.coerce.number().int().min(10_000).default(240_000),
  })
  .superRefine((env, ctx) => {
    if (env.DAYTONA_CREATE_MODE === "api") return;
    const need = [
      "KILN_ACTIONS_CALLBACK_SECRET",
      "KILN_ACTIONS_CALLBACK_URL",
      "KILN_ACTIONS_REPO",
      "KILN_ACTIONS_GITHUB_TOKEN",
    ] as const;
    for (const key of need) {
      if (!env[key]) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `${key} is required when DAYTONA_CREATE_MODE=${env.DAYTONA_CREATE_MODE}`,
        });
      }
    }
    if (env.KILN_ACTIONS_REPO && !/^[\w.-]+\/[\w.-]+$/.test(env.KILN_ACTIONS_REPO)) {
      ctx.addIssue({ code: "custom", path: ["KILN_ACTIONS_REPO"], message: "must be owner/name" });
    }
  });

export interface ActionsConfig {
  callbackSecret: string;
  callbackUrl: string;
  owner: string;
  repo: string;
  workflow: string;
  ref: string;
  githubToken: string;
  githubApiUrl: string;
  timeoutMs: number;
}

export interface DaytonaProviderConfig {
  apiKey: string;
  apiUrl: string;
  target?: string;
  snapshotName: string;
  useDeclarativeImage?: boolean;
  autoStopMinutes: number;
  createMode: CreateMode;
  /** Present when createMode is actions/hybrid. */
  actions?: ActionsConfig;
}

/** Parse the Daytona settings; null when DAYTONA_API_KEY is unset (provider disabled). */
export function loadDaytonaConfig(env: Record<string, string | undefined> = process.env): DaytonaProviderConfig | null {
  if (!env.DAYTONA_API_KEY?.trim()) return null;
  const result = DaytonaEnvSchema.safeParse(env);
  if (!result.success) {
    // Issue paths name variables, never their values (the key is a secret).
    const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid Daytona configuration:\n${lines.join("\n")}`);
  }
  const e = result.data;
  const config: DaytonaProviderConfig = {
    apiKey: e.DAYTONA_API_KEY,
    apiUrl: e.DAYTONA_API_URL.replace(/\/+$/, ""),
    snapshotName: e.DAYTONA_SNAPSHOT_NAME,
    useDeclarativeImage: e.DAYTONA_USE_DECLARATIVE_IMAGE,
    autoStopMinutes: e.DAYTONA_AUTO_STOP_MINUTES,
    createMode: e.DAYTONA_CREATE_MODE,
  };
  if (e.DAYTONA_TARGET) config.target = e.DAYTONA_TARGET;
  if (
    e.KILN_ACTIONS_CALLBACK_SECRET &&
    e.KILN_ACTIONS_CALLBACK_URL &&
    e.KILN_ACTIONS_REPO &&
    e.KILN_ACTIONS_GITHUB_TOKEN
  ) {
    const [owner = "", repo = ""] = e.KILN_ACTIONS_REPO.split("/");
    config.actions = {
      callbackSecret: e.KILN_ACTIONS_CALLBACK_SECRET,
      callbackUrl: e.KILN_ACTIONS_CALLBACK_URL,
      owner,
      repo,
      workflow: e.KILN_ACTIONS_WORKFLOW,
      ref: e.KILN_ACTIONS_REF,
      githubToken: e.KILN_ACTIONS_GITHUB_TOKEN,
      githubApiUrl: e.GITHUB_API_URL.replace(/\/+$/, ""),
      timeoutMs: e.KILN_ACTIONS_TIMEOUT_MS,
    };
  }
  return config;
}
