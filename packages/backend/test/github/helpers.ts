// Shared setup: a fresh RSA App key, the fake GitHub, optionally the real git server, and the real
// OctokitGitHubApp pointed at them. Everything binds 127.0.0.1:0 and is closed by `close()`.
import { createHmac, generateKeyPairSync } from "node:crypto";
import type { GitHubAppConfig } from "../../src/integrations/github/config.ts";
import { OctokitGitHubApp, type OctokitGitHubAppOptions } from "../../src/integrations/github/app.ts";
import { FakeGitHub } from "./fakes/fake-github.ts";
import { GitServer } from "./fakes/git-server.ts";
import { OpenApiResponseValidator } from "./fakes/openapi.ts";

export const APP_ID = 424242;
export const WEBHOOK_SECRET = "kiln-test-webhook-secret-7f3a";
export const OAUTH = { clientId: "Iv1.kilntestclient", clientSecret: "kiln-test-client-secret-9c1d" };

export interface AppKeys {
  privateKeyPem: string;
  publicKeyPem: string;
}

/** PKCS#1 like the key GitHub hands out. 2048-bit keygen costs ~100 ms, so keys are per call site. */
export function generateAppKeys(): AppKeys {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

let sharedValidator: OpenApiResponseValidator | undefined;
/** One per test file (worker): parsing GitHub's 13 MB description takes a moment. */
export function validator(): OpenApiResponseValidator {
  sharedValidator ??= new OpenApiResponseValidator();
  return sharedValidator;
}

export interface World {
  keys: AppKeys;
  fake: FakeGitHub;
  git: GitServer | undefined;
  config: GitHubAppConfig;
  driver: OctokitGitHubApp;
  /** Everything Octokit logged through the driver (checked for secrets). */
  logs: string[];
  makeDriver(overrides?: Partial<GitHubAppConfig>, options?: OctokitGitHubAppOptions): OctokitGitHubApp;
  close(): Promise<void>;
}

/** The backend environment that turns GitHub (App, webhooks, OAuth sign-in) on against this world's fake. */
export function gitHubBackendEnv(world: World, sessionSecret: string): Record<string, string> {
  return {
    GITHUB_APP_ID: String(APP_ID),
    GITHUB_APP_PRIVATE_KEY: world.keys.privateKeyPem,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GITHUB_API_URL: world.fake.url,
    GITHUB_CLIENT_ID: OAUTH.clientId,
    GITHUB_CLIENT_SECRET: OAUTH.clientSecret,
    KILN_SESSION_SECRET: sessionSecret,
  };
}

export async function startWorld(
  options: {
    withGit?: boolean;
    tokenTtlMs?: number;
    maxPerPage?: number;
    oauth?: boolean;
    driver?: OctokitGitHubAppOptions;
  } = {},
): Promise<World> {
  const keys = generateAppKeys();
  let fakeRef: FakeGitHub | undefined;
  const git = options.withGit
    ? await GitServer.start({
        authorize: (token, repo, access) => (fakeRef ? fakeRef.authorizeGit(token, repo, access) : "unauthenticated"),
      })
    : undefined;
  const fake = await FakeGitHub.start({
    appId: APP_ID,
    publicKeyPem: keys.publicKeyPem,
    oauth: OAUTH,
    ...(options.tokenTtlMs !== undefined ? { tokenTtlMs: options.tokenTtlMs } : {}),
    ...(options.maxPerPage !== undefined ? { maxPerPage: options.maxPerPage } : {}),
    ...(git ? { git } : {}),
    validator: validator(),
  });
  fakeRef = fake;
  const logs: string[] = [];
  const log = {
    debug: (m: string) => void logs.push(`debug ${m}`),
    info: (m: string) => void logs.push(`info ${m}`),
    warn: (m: string) => void logs.push(`warn ${m}`),
    error: (m: string) => void logs.push(`error ${m}`),
  };
  const config: GitHubAppConfig = {
    appId: APP_ID,
    privateKey: keys.privateKeyPem,
    webhookSecret: WEBHOOK_SECRET,
    oauth: options.oauth === false ? null : OAUTH,
    apiUrl: fake.url,
    webUrl: fake.url,
  };
  const makeDriver = (overrides: Partial<GitHubAppConfig> = {}, driverOptions: OctokitGitHubAppOptions = {}) =>
    new OctokitGitHubApp({ ...config, ...overrides }, { log, ...options.driver, ...driverOptions });
  return {
    keys,
    fake,
    git,
    config,
    driver: makeDriver(),
    logs,
    makeDriver,
    async close() {
      await fake.close();
      if (git) await git.close();
    },
  };
}

/** Independent of @octokit: what GitHub computes and sends as X-Hub-Signature-256. */
export function signWebhook(secret: string, rawBody: string | Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(rawBody).digest("hex")}`;
}

export async function expectKilnError(promise: Promise<unknown>, code: string, messagePart?: RegExp) {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (!caught) throw new Error(`expected KilnError(${code}) but the call succeeded`);
  const e = caught as { name?: string; code?: string; message?: string };
  if (e.name !== "KilnError" || e.code !== code || (messagePart && !messagePart.test(e.message ?? ""))) {
    throw new Error(`expected KilnError(${code}${messagePart ? ` ${messagePart}` : ""}), got ${e.name}(${e.code}): ${e.message}`);
  }
  return caught as Error & { code: string };
}
