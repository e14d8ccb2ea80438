// GitHub App configuration from the environment. Null when GitHub is not set up at all (Kiln then runs
// with local repos only); a KilnError when it is half set up, so a typo fails at startup rather than
// at the first webhook.
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { KilnError, parseInput } from "@kiln/shared";
import { z } from "zod";

export const DEFAULT_GITHUB_API_URL = "https://api.github.com";

export interface GitHubAppConfig {
  appId: number;
  /** PEM (PKCS#1 as GitHub hands it out, or PKCS#8). Secret: never log. */
  privateKey: string;
  /** Secret: never log. */
  webhookSecret: string;
  /** User sign-in; null when GITHUB_CLIENT_ID/SECRET are not set. */
  oauth: { clientId: string; clientSecret: string } | null;
  /** REST base URL without trailing slash (GHES: https://host/api/v3). */
  apiUrl: string;
  /** Web base URL for links people open (github.com or the GHES host). */
  webUrl: string;
}

/** The env variables that mean "GitHub is meant to be configured" when any is set. */
const TRIGGER_VARS = [
  "GITHUB_APP_ID",
  "GITHUB_APP_PRIVATE_KEY",
  "GITHUB_APP_PRIVATE_KEY_PATH",
  "GITHUB_WEBHOOK_SECRET",
  "GITHUB_CLIENT_ID",
  "GITHUB_CLIENT_SECRET",
] as const;

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

const urlString = (name: string) =>
  optionalString.refine((v) => v === undefined || /^https?:\/\/[^\s/]+/.test(v), {
    message: `${name} must be an http(s) URL`,
  });

const EnvSchema = z
  .object({
    GITHUB_APP_ID: optionalString.refine((v) => v !== undefined && /^[1-9][0-9]{0,11}$/.test(v), {
      message: "GITHUB_APP_ID must be the numeric App ID",
    }),
    GITHUB_APP_PRIVATE_KEY: optionalString,
    GITHUB_APP_PRIVATE_KEY_PATH: optionalString,
    GITHUB_WEBHOOK_SECRET: optionalString.refine((v) => v !== undefined, {
      message: "GITHUB_WEBHOOK_SECRET is required (the App's webhook secret)",
    }),
    GITHUB_CLIENT_ID: optionalString,
    GITHUB_CLIENT_SECRET: optionalString,
    GITHUB_API_URL: urlString("GITHUB_API_URL"),
    GITHUB_WEB_URL: urlString("GITHUB_WEB_URL"),
  })
  .superRefine((env, ctx) => {
    const hasKey = env.GITHUB_APP_PRIVATE_KEY !== undefined;
    const hasPath = env.GITHUB_APP_PRIVATE_KEY_PATH !== undefined;
    if (hasKey === hasPath) {
      ctx.addIssue({
        code: "custom",
        path: ["GITHUB_APP_PRIVATE_KEY"],
        message: "set exactly one of GITHUB_APP_PRIVATE_KEY (PEM) or GITHUB_APP_PRIVATE_KEY_PATH",
      });
    }
    if ((env.GITHUB_CLIENT_ID === undefined) !== (env.GITHUB_CLIENT_SECRET === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["GITHUB_CLIENT_ID"],
        message: "set both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET, or neither",
      });
    }
  });

/** github.com's API lives on a different host from its web UI; GHES serves the API under /api/v3. */
export function defaultWebUrl(apiUrl: string): string {
  if (/^https:\/\/api\.github\.com$/i.test(apiUrl)) return "https://github.com";
  const ghec = /^https:\/\/api\.(.+\.ghe\.com)$/i.exec(apiUrl);
  if (ghec) return `https://${ghec[1]}`;
  return apiUrl.replace(/\/api\/v3$/i, "");
}

/** Env values often carry the PEM with literal "\n"; a key file keeps its newlines. */
function normalisePem(raw: string, source: string): string {
  const pem = raw.includes("\\n") ? raw.replace(/\\n/g, "\n") : raw;
  if (pem.includes("BEGIN OPENSSH PRIVATE KEY")) {
    throw new KilnError(
      "invalid_input",
      `${source} is in OpenSSH format; use the PEM key downloaded from the GitHub App settings`,
    );
  }
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== "rsa") throw new Error("not RSA");
  } catch {
    // Node's decoder message says nothing useful and must not echo key material; state the rule.
    throw new KilnError("invalid_input", `${source} is not a valid RSA private key in PEM format`);
  }
  return pem.trim() + "\n";
}

export function loadGitHubConfig(env: Record<string, string | undefined> = process.env): GitHubAppConfig | null {
  const configured = TRIGGER_VARS.some((name) => (env[name] ?? "").trim() !== "");
  if (!configured) return null;
  const parsed = parseInput(EnvSchema, env, "GitHub App configuration");
  let privateKey: string;
  if (parsed.GITHUB_APP_PRIVATE_KEY_PATH !== undefined) {
    let raw: string;
    try {
      raw = readFileSync(parsed.GITHUB_APP_PRIVATE_KEY_PATH, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "read error";
      throw new KilnError("invalid_input", `GITHUB_APP_PRIVATE_KEY_PATH cannot be read (${code})`);
    }
    privateKey = normalisePem(raw, "GITHUB_APP_PRIVATE_KEY_PATH");
  } else {
    privateKey = normalisePem(parsed.GITHUB_APP_PRIVATE_KEY ?? "", "GITHUB_APP_PRIVATE_KEY");
  }
  const apiUrl = (parsed.GITHUB_API_URL ?? DEFAULT_GITHUB_API_URL).replace(/\/+$/, "");
  const webUrl = (parsed.GITHUB_WEB_URL ?? defaultWebUrl(apiUrl)).replace(/\/+$/, "");
  return {
    appId: Number(parsed.GITHUB_APP_ID),
    privateKey,
    webhookSecret: parsed.GITHUB_WEBHOOK_SECRET ?? "",
    oauth:
      parsed.GITHUB_CLIENT_ID !== undefined && parsed.GITHUB_CLIENT_SECRET !== undefined
        ? { clientId: parsed.GITHUB_CLIENT_ID, clientSecret: parsed.GITHUB_CLIENT_SECRET }
        : null,
    apiUrl,
    webUrl,
  };
}

/** Safe to log: no key, secret or client secret. */
export function describeGitHubConfig(config: GitHubAppConfig): Record<string, unknown> {
  return {
    appId: config.appId,
    apiUrl: config.apiUrl,
    webUrl: config.webUrl,
    oauth: config.oauth ? { clientId: config.oauth.clientId } : null,
  };
}
