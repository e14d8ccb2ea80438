// The engine's admin token: without it nothing reaches the engine's REST API (list, create, destroy
// actors). Generated once per data dir for the embedded engine; an external engine's token is config.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export const ENGINE_TOKEN_FILE = "engine-admin-token";

export function loadEngineToken(config: { KILN_DATA_DIR: string; KILN_ENGINE_ENDPOINT?: string; KILN_ENGINE_TOKEN?: string }): string {
  if (config.KILN_ENGINE_TOKEN) return config.KILN_ENGINE_TOKEN;
  if (config.KILN_ENGINE_ENDPOINT) {
    throw new Error("Invalid Kiln configuration:\n  KILN_ENGINE_TOKEN: required with KILN_ENGINE_ENDPOINT (the engine's auth.admin_token)");
  }
  mkdirSync(config.KILN_DATA_DIR, { recursive: true });
  const file = path.join(config.KILN_DATA_DIR, ENGINE_TOKEN_FILE);
  try {
    const existing = readFileSync(file, "utf8").trim();
    if (existing.length >= 32) {
      chmodSync(file, 0o600);
      return existing;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const token = randomBytes(32).toString("base64url");
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return token;
}
