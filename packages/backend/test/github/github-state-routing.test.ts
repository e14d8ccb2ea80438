// Pure rules of the github-state actor: which organization a webhook belongs to, and clone-URL matching.
import { describe, expect, test } from "vitest";
import { orgForWebhook, remoteKey } from "../../src/actors/github-state/index.ts";
import type { GitHubWebhookEvent } from "../../src/integrations/github/webhooks.ts";

const repo = { id: 1, fullName: "Acme-Corp/widgets", owner: "Acme-Corp", name: "widgets", defaultBranch: "main" };
const account = { id: 9, login: "Acme-Corp", type: "Organization" };

describe("orgForWebhook", () => {
  const events: GitHubWebhookEvent[] = [
    { kind: "installation", deliveryId: "1", action: "created", installationId: 7, account, repositorySelection: "all", repositories: [] },
    { kind: "installation_repositories", deliveryId: "2", action: "added", installationId: 7, account, repositorySelection: "selected", added: [], removed: [] },
    {
      kind: "push",
      deliveryId: "3",
      installationId: 7,
      repo,
      ref: "refs/heads/main",
      branch: "main",
      before: "a",
      after: "b",
      created: false,
      deleted: false,
      forced: false,
    },
  ];

  test("multi-user: the account / repository owner, lower-cased", () => {
    for (const e of events) expect(orgForWebhook(e, true)).toBe("acme-corp");
  });

  test("single-user: everything belongs to the default org", () => {
    for (const e of events) expect(orgForWebhook(e, false)).toBe("default");
  });

  test("ping and ignored events go nowhere; an installation event without an account has no org", () => {
    expect(orgForWebhook({ kind: "ping", deliveryId: "p" }, true)).toBeNull();
    expect(orgForWebhook({ kind: "ignored", deliveryId: "i", event: "star", action: "created" }, false)).toBeNull();
    expect(
      orgForWebhook({ kind: "installation", deliveryId: "x", action: "deleted", installationId: 1, account: null, repositorySelection: null, repositories: [] }, true),
    ).toBeNull();
  });
});

describe("remoteKey", () => {
  test("ignores host case, trailing slash and .git; keeps scheme, port and path", () => {
    expect(remoteKey("https://GitHub.com/acme/widgets.git")).toBe(remoteKey("https://github.com/acme/widgets/"));
    expect(remoteKey("http://127.0.0.1:8080/acme/widgets.git")).toBe("http://127.0.0.1:8080/acme/widgets");
    expect(remoteKey("https://github.com/acme/widgets")).not.toBe(remoteKey("https://github.com/acme/gadgets"));
    expect(remoteKey("http://github.com/acme/widgets")).not.toBe(remoteKey("https://github.com/acme/widgets"));
  });
});
