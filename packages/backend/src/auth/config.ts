// Auth configuration. Auth is on exactly when GitHub sign-in is configured (a GitHub App with
// GITHUB_CLIENT_ID/SECRET); it then needs KILN_SESSION_SECRET. Otherwise Kiln stays in single-user mode.
import { KilnError, parseInput } from "@kiln/shared";
import { z } from "zod";
import type { GitHubAppConfig } from "../integrations/github/config.ts";
import { MIN_SECRET_LENGTH } from "./tokens.ts";

export interface AuthConfig {
  enabled: boolean;
  /** HMAC key material for session and internal tokens. Secret: never log. null when auth is off. */
  secret: string | null;
  /** Public base URL of this server (OAuth callback, Secure cookies); null: derived from each request. */
  publicUrl: string | null;
  sessionTtlMs: number;
}

const EnvSchema = z.object({
  KILN_SESSION_SECRET: z
    .string()
    .optional()
    .transform((v) => (v && v.trim() !== "" ? v.trim() : undefined)),
  KILN_PUBLIC_URL: z
    .string()
    .optional()
    .transform((v) => (v && v.trim() !== "" ? v.trim().replace(/\/+$/, "") : undefined))
    .refine((v) => v === undefined || /^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(v), "KILN_PUBLIC_URL must be an http(s) URL"),
  KILN_SESSION_TTL_HOURS: z.coerce.number().min(0.1).max(24 * 30).default(12),
});

export const AUTH_OFF: AuthConfig = { enabled: false, secret: null, publicUrl: null, sessionTtlMs: 12 * 3_600_000 };

export function loadAuthConfig(env: Record<string, string | undefined>, github: GitHubAppConfig | null): AuthConfig {
  const parsed = parseInput(EnvSchema, env, "auth configuration");
  const enabled = github?.oauth != null;
  if (!enabled) return { ...AUTH_OFF, publicUrl: parsed.KILN_PUBLIC_URL ?? null };
  const secret = parsed.KILN_SESSION_SECRET;
  if (!secret) {
    throw new KilnError(
      "invalid_input",
      "KILN_SESSION_SECRET is required when GitHub sign-in is configured (GITHUB_CLIENT_ID/SECRET); use 32+ random characters",
    );
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new KilnError("invalid_input", `KILN_SESSION_SECRET must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  return {
    enabled: true,
    secret,
    publicUrl: parsed.KILN_PUBLIC_URL ?? null,
    sessionTtlMs: parsed.KILN_SESSION_TTL_HOURS * 3_600_000,
  };
}
