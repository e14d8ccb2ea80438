// Signed, stateless session tokens: `kiln1.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`, keyed by
// a key derived from KILN_SESSION_SECRET. The same token is the http-only session cookie and the bearer
// the client passes to actors as connection params. Actor-to-actor calls carry a separate internal token
// derived from the same secret (so every runner sharing the secret accepts it).
import { createHmac, timingSafeEqual } from "node:crypto";
import { KilnError, OrgIdSchema } from "@kiln/shared";
import { z } from "zod";

const PREFIX = "kiln1";
const INTERNAL_PREFIX = "kiln-internal";
export const MIN_SECRET_LENGTH = 32;

export const SessionClaimsSchema = z.object({
  typ: z.literal("session"),
  /** GitHub user id. */
  sub: z.number().int(),
  login: z.string().min(1).max(100),
  name: z.string().max(256).nullable(),
  avatarUrl: z.string().max(2000).nullable(),
  /** Organizations (GitHub account logins, lower case) this user may reach. */
  orgs: z.array(OrgIdSchema).max(1000),
  /** Issued / expires, seconds since epoch. */
  iat: z.number().int(),
  exp: z.number().int(),
});
export type SessionClaims = z.infer<typeof SessionClaimsSchema>;

function deriveKey(secret: string, purpose: "session" | "internal"): Buffer {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new KilnError("invalid_input", `KILN_SESSION_SECRET must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  return createHmac("sha256", secret).update(`kiln:${purpose}:v1`).digest();
}

const mac = (key: Buffer, data: string) => createHmac("sha256", key).update(data).digest();

function equalBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function signSession(secret: string, claims: SessionClaims): string {
  const body = Buffer.from(JSON.stringify(SessionClaimsSchema.parse(claims)), "utf8").toString("base64url");
  const signed = `${PREFIX}.${body}`;
  return `${signed}.${mac(deriveKey(secret, "session"), signed).toString("base64url")}`;
}

/** The claims of a valid, unexpired token; otherwise an `unauthorized` KilnError (never echoing the token). */
export function verifySession(secret: string, token: string, nowMs = Date.now()): SessionClaims {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== PREFIX || !parts[1] || !parts[2]) {
    throw new KilnError("unauthorized", "session token is malformed; sign in again");
  }
  const expected = mac(deriveKey(secret, "session"), `${PREFIX}.${parts[1]}`);
  if (!equalBytes(expected, Buffer.from(parts[2], "base64url"))) {
    throw new KilnError("unauthorized", "session token signature is invalid; sign in again");
  }
  let claims: SessionClaims;
  try {
    claims = SessionClaimsSchema.parse(JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")));
  } catch {
    throw new KilnError("unauthorized", "session token has invalid claims; sign in again");
  }
  if (claims.exp * 1000 <= nowMs) throw new KilnError("unauthorized", "session expired; sign in again");
  if (claims.iat * 1000 > nowMs + 60_000) throw new KilnError("unauthorized", "session token is not valid yet");
  return claims;
}

/** The bearer actors accept from other actors and from the backend's own routes. Never sent to clients. */
export function internalToken(secret: string): string {
  return `${INTERNAL_PREFIX}.${mac(deriveKey(secret, "internal"), "actor-to-actor").toString("base64url")}`;
}

export function isInternalToken(secret: string, token: string): boolean {
  if (!token.startsWith(`${INTERNAL_PREFIX}.`)) return false;
  return equalBytes(Buffer.from(internalToken(secret)), Buffer.from(token));
}

/** Session claims for a GitHub user: orgs are the accounts the App is installed on that the user can reach. */
export function sessionClaims(
  user: { id: number; login: string; name: string | null; avatarUrl: string | null },
  accountLogins: string[],
  ttlMs: number,
  nowMs = Date.now(),
): SessionClaims {
  const orgs = [...new Set(accountLogins.map((l) => l.toLowerCase()))].filter((l) => OrgIdSchema.safeParse(l).success);
  const iat = Math.floor(nowMs / 1000);
  return {
    typ: "session",
    sub: user.id,
    login: user.login,
    name: user.name,
    avatarUrl: user.avatarUrl,
    orgs: orgs.sort(),
    iat,
    exp: iat + Math.max(60, Math.floor(ttlMs / 1000)),
  };
}
