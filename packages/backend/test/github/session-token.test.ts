// Session token signing and the actor-edge checks, as pure units (no backend, no engine).
import { createHmac } from "node:crypto";
import { KilnError } from "@kiln/shared";
import { describe, expect, test } from "vitest";
import { AUTH_DISABLED, ActorAuth, createProofFor } from "../../src/auth/actor-auth.ts";
import { AUTH_OFF, loadAuthConfig } from "../../src/auth/config.ts";
import {
  MIN_SECRET_LENGTH,
  type SessionClaims,
  internalToken,
  isInternalToken,
  sessionClaims,
  signSession,
  verifySession,
} from "../../src/auth/tokens.ts";
import type { GitHubAppConfig } from "../../src/integrations/github/config.ts";

const SECRET = "unit-test-session-secret-0123456789abcdef";
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const user = { id: 42, login: "Alice", name: "Alice A.", avatarUrl: null };

function claims(overrides: Partial<SessionClaims> = {}): SessionClaims {
  return { ...sessionClaims(user, ["Acme", "acme", "Globex"], 3_600_000, NOW), ...overrides };
}

function code(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    const e = error as { code?: string; name?: string };
    return e.code ?? e.name ?? "unknown";
  }
  return "ok";
}

describe("session tokens", () => {
  test("claims: orgs lower-cased, deduplicated, sorted; expiry from the ttl", () => {
    const c = claims();
    expect(c.orgs).toEqual(["acme", "globex"]);
    expect(c.sub).toBe(42);
    expect(c.exp - c.iat).toBe(3600);
  });

  test("round trip", () => {
    const token = signSession(SECRET, claims());
    expect(token).toMatch(/^kiln1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(verifySession(SECRET, token, NOW + 1000)).toEqual(claims());
  });

  test("the signature is HMAC-SHA256 under a key derived from the secret (checked independently)", () => {
    const token = signSession(SECRET, claims());
    const [prefix, body, sig] = token.split(".");
    const key = createHmac("sha256", SECRET).update("kiln:session:v1").digest();
    expect(createHmac("sha256", key).update(`${prefix}.${body}`).digest("base64url")).toBe(sig);
  });

  test("tampered claims, another secret, truncation and garbage are unauthorized", () => {
    const token = signSession(SECRET, claims());
    const [prefix, , sig] = token.split(".");
    const forgedBody = Buffer.from(JSON.stringify({ ...claims(), orgs: ["acme", "globex", "initech"] })).toString("base64url");
    for (const bad of [
      `${prefix}.${forgedBody}.${sig}`,
      signSession(`${SECRET}-other`, claims()),
      token.slice(0, -2),
      "kiln1..",
      "not-a-token",
      `kiln2.${token.slice(6)}`,
    ]) {
      expect(code(() => verifySession(SECRET, bad, NOW))).toBe("unauthorized");
    }
  });

  test("expired and not-yet-valid tokens are refused", () => {
    const token = signSession(SECRET, claims());
    expect(code(() => verifySession(SECRET, token, NOW + 3_600_000 + 1))).toBe("unauthorized");
    expect(code(() => verifySession(SECRET, token, NOW - 5 * 60_000))).toBe("unauthorized");
  });

  test("well-signed but malformed claims are refused", () => {
    const key = createHmac("sha256", SECRET).update("kiln:session:v1").digest();
    const body = Buffer.from(JSON.stringify({ typ: "session", sub: "42", orgs: "acme" })).toString("base64url");
    const sig = createHmac("sha256", key).update(`kiln1.${body}`).digest("base64url");
    expect(code(() => verifySession(SECRET, `kiln1.${body}.${sig}`, NOW))).toBe("unauthorized");
  });

  test("short secrets are rejected", () => {
    expect(code(() => signSession("x".repeat(MIN_SECRET_LENGTH - 1), claims()))).toBe("invalid_input");
  });

  test("internal token: derived from the secret, distinct from sessions", () => {
    const t = internalToken(SECRET);
    expect(isInternalToken(SECRET, t)).toBe(true);
    expect(isInternalToken(`${SECRET}-other`, t)).toBe(false);
    expect(isInternalToken(SECRET, signSession(SECRET, claims()))).toBe(false);
    expect(code(() => verifySession(SECRET, t, NOW))).toBe("unauthorized");
  });
});

describe("actor auth", () => {
  const auth = new ActorAuth(SECRET);
  // ActorAuth verifies against the real clock.
  const live = signSession(SECRET, sessionClaims(user, ["acme"], 3_600_000));

  test("members reach their org's actors only", () => {
    expect(auth.principal(["org", "acme"], { token: live })).toMatchObject({ kind: "user", login: "Alice" });
    expect(auth.principal(["org", "acme", "task", "t1"], { token: live })).toMatchObject({ kind: "user" });
    expect(auth.principal(["org", "acme", "github"], { token: live })).toMatchObject({ kind: "user" });
    expect(code(() => auth.principal(["org", "globex", "task", "t1"], { token: live }))).toBe("forbidden");
    expect(code(() => auth.principal(["maintenance"], { token: live }))).toBe("forbidden");
  });

  test("missing or bad params are unauthorized; the internal token passes everywhere", () => {
    expect(code(() => auth.principal(["org", "acme"], undefined))).toBe("unauthorized");
    expect(code(() => auth.principal(["org", "acme"], { token: "" }))).toBe("unauthorized");
    expect(code(() => auth.principal(["org", "acme"], { token: "kiln1.x.y" }))).toBe("unauthorized");
    expect(auth.principal(["org", "globex", "task", "t"], auth.internalParams())).toEqual({ kind: "internal" });
  });

  test("internal-only actions: users refused, internal and scheduled (no connection) allowed", () => {
    expect(code(() => auth.requireInternal({ conn: { state: { kind: "user", login: "a", orgs: ["acme"] } } }, "x"))).toBe("forbidden");
    expect(code(() => auth.requireInternal({ conn: { state: { kind: "internal" } } }, "x"))).toBe("ok");
    expect(code(() => auth.requireInternal({ conn: null }, "x"))).toBe("ok");
  });

  test("create proof is bound to the key", () => {
    const key = ["org", "acme", "task", "t1"];
    const input = { prompt: "x", ...createProofFor(auth, key) };
    expect(code(() => auth.requireCreateProof(key, input))).toBe("ok");
    expect(code(() => auth.requireCreateProof(["org", "acme", "task", "t2"], input))).toBe("forbidden");
    expect(code(() => auth.requireCreateProof(key, { prompt: "x" }))).toBe("forbidden");
  });

  test("auth off: everything passes, no params, no proof", () => {
    expect(AUTH_DISABLED.principal(["org", "anything"], undefined)).toEqual({ kind: "anonymous" });
    expect(AUTH_DISABLED.internalParams()).toBeUndefined();
    expect(createProofFor(AUTH_DISABLED, ["org", "x", "task", "y"])).toEqual({});
    expect(code(() => AUTH_DISABLED.requireInternal({ conn: { state: { kind: "user" } } }, "x"))).toBe("ok");
  });

  test("errors reach clients as typed KilnError codes", () => {
    try {
      auth.principal(["org", "globex"], { token: live });
      throw new Error("expected a rejection");
    } catch (error) {
      // A RivetKit UserError carrying the KilnError code (what the client rebuilds into KilnError).
      expect((error as { code?: string }).code).toBe("forbidden");
      expect(error).not.toBeInstanceOf(KilnError);
    }
  });
});

describe("auth config", () => {
  const github = { oauth: { clientId: "c", clientSecret: "s" } } as GitHubAppConfig;

  test("off without GitHub OAuth; on with it, requiring a long secret", () => {
    expect(loadAuthConfig({}, null)).toEqual(AUTH_OFF);
    expect(loadAuthConfig({}, { ...github, oauth: null })).toMatchObject({ enabled: false });
    expect(code(() => loadAuthConfig({}, github))).toBe("invalid_input");
    expect(code(() => loadAuthConfig({ KILN_SESSION_SECRET: "short" }, github))).toBe("invalid_input");
    expect(loadAuthConfig({ KILN_SESSION_SECRET: SECRET, KILN_SESSION_TTL_HOURS: "2", KILN_PUBLIC_URL: "https://kiln.example/" }, github)).toEqual({
      enabled: true,
      secret: SECRET,
      publicUrl: "https://kiln.example",
      sessionTtlMs: 2 * 3_600_000,
    });
    expect(code(() => loadAuthConfig({ KILN_SESSION_SECRET: SECRET, KILN_PUBLIC_URL: "ftp://x" }, github))).toBe("invalid_input");
  });
});
