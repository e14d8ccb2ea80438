// buildProviders: which providers a backend offers from its environment, and the webhook secret.
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { buildProviders } from "../../src/providers/index.ts";
import { tempDir } from "../harness.ts";

const dataDir = tempDir("providers");
const config = loadConfig({ KILN_DATA_DIR: dataDir });

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe("buildProviders", () => {
  it("offers only local without DAYTONA_API_KEY; every callback is then unauthenticated", async () => {
    const built = await buildProviders(config, {});
    expect(Object.keys(built.providers)).toEqual(["local"]);
    expect(built.actionsCallbackSecret).toBeNull();
    expect(built.providers.local?.reapOrphans).toBeUndefined(); // nothing to reap locally: no maintenance cron
    await built.close();
  });

  it("adds daytona (with release/reapOrphans) when configured; the Actions secret only in actions/hybrid mode", async () => {
    const api = await buildProviders(config, { DAYTONA_API_KEY: "k", DAYTONA_API_URL: "http://127.0.0.1:9/api", DAYTONA_USE_DEPRECATED_POLLING: "true" });
    expect(Object.keys(api.providers).sort()).toEqual(["daytona", "local"]);
    expect(api.providers.daytona?.release).toBeTypeOf("function");
    expect(api.providers.daytona?.reapOrphans).toBeTypeOf("function");
    expect(api.actionsCallbackSecret).toBeNull();
    await api.close();

    const hybrid = await buildProviders(config, {
      DAYTONA_API_KEY: "k",
      DAYTONA_API_URL: "http://127.0.0.1:9/api",
      DAYTONA_USE_DEPRECATED_POLLING: "true",
      DAYTONA_CREATE_MODE: "hybrid",
      KILN_ACTIONS_CALLBACK_SECRET: "s3cret",
      KILN_ACTIONS_CALLBACK_URL: "https://kiln.example/v1/webhooks/actions",
      KILN_ACTIONS_REPO: "acme/infra",
      KILN_ACTIONS_GITHUB_TOKEN: "t",
    });
    expect(hybrid.actionsCallbackSecret).toBe("s3cret");
    await hybrid.close();
  });

  it("refuses a half-configured Daytona (names the variable, never the key)", async () => {
    const error = await buildProviders(config, { DAYTONA_API_KEY: "sekrit-key", DAYTONA_CREATE_MODE: "actions" }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain("KILN_ACTIONS_CALLBACK_SECRET");
    expect(error?.message).not.toContain("sekrit-key");
  });
});
