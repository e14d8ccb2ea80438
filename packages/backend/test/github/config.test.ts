// Env parsing: null when GitHub is not set up, a clear invalid_input when half set up, and no
// secret ever echoed in an error.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultWebUrl, describeGitHubConfig, loadGitHubConfig } from "../../src/integrations/github/config.ts";
import { generateAppKeys } from "./helpers.ts";

const keys = generateAppKeys();
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "kiln-gh-config-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const base = {
  GITHUB_APP_ID: "12345",
  GITHUB_APP_PRIVATE_KEY: keys.privateKeyPem,
  GITHUB_WEBHOOK_SECRET: "whsec-123",
};

function thrown(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error("expected a throw");
}

describe("loadGitHubConfig", () => {
  it("is null when nothing GitHub-related is set", () => {
    expect(loadGitHubConfig({})).toBeNull();
    expect(loadGitHubConfig({ GITHUB_API_URL: "https://ghe.example.com/api/v3", GITHUB_APP_ID: "  " })).toBeNull();
  });

  it("parses a full configuration with github.com defaults", () => {
    const config = loadGitHubConfig({ ...base, GITHUB_CLIENT_ID: "Iv1.x", GITHUB_CLIENT_SECRET: "cs" })!;
    expect(config).toMatchObject({
      appId: 12345,
      webhookSecret: "whsec-123",
      oauth: { clientId: "Iv1.x", clientSecret: "cs" },
      apiUrl: "https://api.github.com",
      webUrl: "https://github.com",
    });
    expect(config.privateKey).toContain("BEGIN RSA PRIVATE KEY");
    expect(JSON.stringify(describeGitHubConfig(config))).not.toMatch(/PRIVATE KEY|whsec|"cs"/);
  });

  it("accepts a PEM with escaped newlines, or a key file", async () => {
    const escaped = keys.privateKeyPem.replace(/\n/g, "\\n");
    expect(loadGitHubConfig({ ...base, GITHUB_APP_PRIVATE_KEY: escaped })?.privateKey).toBe(keys.privateKeyPem);
    const file = path.join(dir, "app.pem");
    await writeFile(file, keys.privateKeyPem);
    const fromFile = loadGitHubConfig({ ...base, GITHUB_APP_PRIVATE_KEY: undefined, GITHUB_APP_PRIVATE_KEY_PATH: file });
    expect(fromFile?.privateKey).toBe(keys.privateKeyPem);
    expect(thrown(() => loadGitHubConfig({ ...base, GITHUB_APP_PRIVATE_KEY: undefined, GITHUB_APP_PRIVATE_KEY_PATH: path.join(dir, "missing.pem") })))
      .toMatchObject({ code: "invalid_input", message: expect.stringMatching(/cannot be read \(ENOENT\)/) });
  });

  it("lists every problem of a half-done setup, without echoing secrets", () => {
    const e = thrown(() => loadGitHubConfig({ GITHUB_APP_ID: "abc", GITHUB_CLIENT_ID: "Iv1.x", GITHUB_CLIENT_SECRET: undefined, GITHUB_API_URL: "ftp://x" }));
    expect(e.code).toBe("invalid_input");
    for (const part of ["GITHUB_APP_ID", "GITHUB_WEBHOOK_SECRET", "GITHUB_APP_PRIVATE_KEY", "GITHUB_CLIENT_ID", "GITHUB_API_URL"]) {
      expect(e.message).toContain(part);
    }
  });

  it("rejects a key that is not a usable RSA PEM, without echoing it", () => {
    const openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    expect(thrown(() => loadGitHubConfig({ ...base, GITHUB_APP_PRIVATE_KEY: openssh })).message).toMatch(/OpenSSH format/);
    const garbage = "-----BEGIN RSA PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldC1tYXRlcmlhbA==\n-----END RSA PRIVATE KEY-----\n";
    const e = thrown(() => loadGitHubConfig({ ...base, GITHUB_APP_PRIVATE_KEY: garbage }));
    expect(e.message).toMatch(/not a valid RSA private key/);
    expect(e.message).not.toContain("bm90LWEta2V5");
    expect(thrown(() => loadGitHubConfig({ ...base, GITHUB_APP_PRIVATE_KEY_PATH: "/x" })).message).toMatch(/exactly one/);
  });

  it("derives the web URL for GHES and GHE.com, and takes overrides", () => {
    expect(defaultWebUrl("https://ghe.example.com/api/v3")).toBe("https://ghe.example.com");
    expect(defaultWebUrl("https://api.octo.ghe.com")).toBe("https://octo.ghe.com");
    expect(loadGitHubConfig({ ...base, GITHUB_API_URL: "http://127.0.0.1:4010/", GITHUB_WEB_URL: "http://127.0.0.1:4011" })).toMatchObject({
      apiUrl: "http://127.0.0.1:4010",
      webUrl: "http://127.0.0.1:4011",
    });
  });
});
