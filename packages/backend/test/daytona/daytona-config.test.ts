// loadDaytonaConfig: env → validated provider config (null when Daytona is not configured).
import { describe, expect, it } from "vitest";
import { ActionsCallbackWaiter } from "../../src/integrations/github-actions/callbacks.ts";
import { loadDaytonaConfig } from "../../src/providers/daytona/config.ts";
import { createDaytonaProvider } from "../../src/providers/daytona/factory.ts";

const actionsEnv = {
  KILN_ACTIONS_CALLBACK_SECRET: "s3cret",
  KILN_ACTIONS_CALLBACK_URL: "https://kiln.example/v1/webhooks/actions",
  KILN_ACTIONS_REPO: "acme/infra",
  KILN_ACTIONS_GITHUB_TOKEN: "ghp_x",
};

describe("loadDaytonaConfig", () => {
  it("returns null without an API key", () => {
    expect(loadDaytonaConfig({})).toBeNull();
    expect(loadDaytonaConfig({ DAYTONA_API_KEY: "  " })).toBeNull();
  });

  it("applies defaults", () => {
    expect(loadDaytonaConfig({ DAYTONA_API_KEY: "k" })).toEqual({
      apiKey: "k",
      apiUrl: "https://app.daytona.io/api",
      snapshotName: "kiln-sandbox:0.1.0",
      useDeclarativeImage: false,
      autoStopMinutes: 30,
      createMode: "api",
    });
  });

  it("parses every setting", () => {
    const config = loadDaytonaConfig({
      DAYTONA_API_KEY: "k",
      DAYTONA_API_URL: "http://127.0.0.1:9/api/",
      DAYTONA_TARGET: "eu",
      DAYTONA_SNAPSHOT_NAME: "kiln-sandbox:0.2.0",
      DAYTONA_USE_DECLARATIVE_IMAGE: "true",
      DAYTONA_CREATE_MODE: "hybrid",
      DAYTONA_AUTO_STOP_MINUTES: "45",
      ...actionsEnv,
      KILN_ACTIONS_REF: "release",
    });
    expect(config).toMatchObject({
      apiUrl: "http://127.0.0.1:9/api",
      target: "eu",
      snapshotName: "kiln-sandbox:0.2.0",
      useDeclarativeImage: true,
      createMode: "hybrid",
      autoStopMinutes: 45,
      actions: { owner: "acme", repo: "infra", workflow: "create-sandbox.yml", ref: "release", callbackSecret: "s3cret", timeoutMs: 240_000 },
    });
  });

  it("names the missing Actions settings (never their values) for actions/hybrid", () => {
    expect(() => loadDaytonaConfig({ DAYTONA_API_KEY: "secret-key-value", DAYTONA_CREATE_MODE: "actions" })).toThrow(
      /KILN_ACTIONS_CALLBACK_SECRET is required when DAYTONA_CREATE_MODE=actions/,
    );
    expect(() => loadDaytonaConfig({ DAYTONA_API_KEY: "secret-key-value", DAYTONA_CREATE_MODE: "nope" })).not.toThrow(/secret-key-value/);
    expect(() => loadDaytonaConfig({ DAYTONA_API_KEY: "k", DAYTONA_AUTO_STOP_MINUTES: "0" })).toThrow(/DAYTONA_AUTO_STOP_MINUTES/);
    expect(() => loadDaytonaConfig({ DAYTONA_API_KEY: "k", DAYTONA_CREATE_MODE: "hybrid", ...actionsEnv, KILN_ACTIONS_REPO: "bad" })).toThrow(
      /owner\/name/,
    );
  });

  it("createDaytonaProvider wires the Actions path from config and insists on a waiter", async () => {
    const config = loadDaytonaConfig({ DAYTONA_API_KEY: "k", DAYTONA_API_URL: "http://127.0.0.1:9/api", DAYTONA_CREATE_MODE: "hybrid", ...actionsEnv });
    if (!config) throw new Error("config expected");
    expect(() => createDaytonaProvider(config)).toThrow(/callback waiter/);
    const provider = createDaytonaProvider(config, { actionsWaiter: new ActionsCallbackWaiter() });
    expect(provider.id).toBe("daytona");
    await provider.close();
  });
});
