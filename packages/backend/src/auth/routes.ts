// Sign-in routes: GitHub OAuth web flow (state cookie → GitHub → callback), the signed session cookie,
// `me` (session info + the bearer the client hands to actors) and logout. The GitHub user token from the
// code exchange is used once to read the user and their installations, then dropped: Kiln stores none.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { type AuthMeResponse, DEFAULT_ORG_ID, KilnError, SIGN_IN_ERROR_PARAM, errorMessage } from "@kiln/shared";
import type { Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { GitHubAppDriver } from "../integrations/github/app.ts";
import type { AuthConfig } from "./config.ts";
import { type SessionClaims, sessionClaims, signSession, verifySession } from "./tokens.ts";

export const SESSION_COOKIE = "kiln_session";
export const STATE_COOKIE = "kiln_oauth_state";
const STATE_TTL_S = 600;
const LOGIN_PATH = "/v1/auth/github/login";
const CALLBACK_PATH = "/v1/auth/github/callback";

export interface AuthRoutesOptions {
  auth: AuthConfig;
  /** null when no GitHub App is configured. */
  driver: Pick<GitHubAppDriver, "oauthAuthorizeUrl" | "exchangeOAuthCode" | "installUrl"> | null;
  log?: (message: string) => void;
}

function baseUrl(c: Context, auth: AuthConfig): string {
  return auth.publicUrl ?? new URL(c.req.url).origin;
}

const isHttps = (c: Context, auth: AuthConfig) => baseUrl(c, auth).startsWith("https://");

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function errorJson(c: Context, error: KilnError) {
  return c.json({ code: error.code, message: error.message }, error.status as ContentfulStatusCode);
}

/**
 * A failed OAuth callback: a browser that navigated here goes back to the sign-in screen with the
 * reason (it would otherwise be left on a page of raw JSON); any other client gets the JSON error.
 */
function signInFailed(c: Context, error: KilnError) {
  const navigation = c.req.header("sec-fetch-mode") === "navigate" || (c.req.header("accept") ?? "").includes("text/html");
  if (!navigation) return errorJson(c, error);
  return c.redirect(`/?${SIGN_IN_ERROR_PARAM}=${encodeURIComponent(error.message)}`, 302);
}

export function registerAuthRoutes(app: Hono, options: AuthRoutesOptions): void {
  const { auth, driver } = options;
  const log = options.log ?? ((m: string) => console.log(m));
  let installUrl: string | null = null;
  let installUrlTriedAt = 0;

  /** The session cookie (browsers) or `Authorization: Bearer <session token>` (CLIs, tests). */
  const readSession = (c: Context): { claims: SessionClaims; token: string } | null => {
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
    const token = bearer ?? getCookie(c, SESSION_COOKIE);
    if (!token || !auth.secret) return null;
    try {
      return { claims: verifySession(auth.secret, token), token };
    } catch (error) {
      if (error instanceof KilnError && error.code === "unauthorized") return null; // expired/forged: signed out
      throw error;
    }
  };

  app.get("/v1/auth/me", async (c) => {
    if (driver && installUrl === null && Date.now() - installUrlTriedAt > 5 * 60_000) {
      installUrlTriedAt = Date.now();
      try {
        installUrl = await driver.installUrl();
      } catch (error) {
        log(`[kiln] could not read the GitHub App install URL: ${errorMessage(error)}`);
      }
    }
    c.header("cache-control", "no-store");
    if (!auth.enabled) {
      const body: AuthMeResponse = {
        authEnabled: false,
        githubConfigured: driver !== null,
        user: null,
        orgs: [DEFAULT_ORG_ID],
        signInUrl: null,
        installUrl,
        expiresAt: null,
        token: null,
      };
      return c.json(body);
    }
    const session = readSession(c);
    const body: AuthMeResponse = session
      ? {
          authEnabled: true,
          githubConfigured: true,
          user: {
            id: session.claims.sub,
            login: session.claims.login,
            name: session.claims.name,
            avatarUrl: session.claims.avatarUrl,
          },
          orgs: session.claims.orgs,
          signInUrl: LOGIN_PATH,
          installUrl,
          expiresAt: session.claims.exp * 1000,
          token: session.token,
        }
      : {
          authEnabled: true,
          githubConfigured: true,
          user: null,
          orgs: [],
          signInUrl: LOGIN_PATH,
          installUrl,
          expiresAt: null,
          token: null,
        };
    return c.json(body);
  });

  app.get(LOGIN_PATH, (c) => {
    if (!auth.enabled || !driver) return errorJson(c, new KilnError("not_found", "GitHub sign-in is not configured"));
    const state = randomBytes(24).toString("base64url");
    setCookie(c, STATE_COOKIE, state, {
      httpOnly: true,
      sameSite: "Lax",
      secure: isHttps(c, auth),
      path: "/v1/auth/github",
      maxAge: STATE_TTL_S,
    });
    const url = driver.oauthAuthorizeUrl({ state, redirectUrl: `${baseUrl(c, auth)}${CALLBACK_PATH}` });
    return c.redirect(url, 302);
  });

  app.get(CALLBACK_PATH, async (c) => {
    if (!auth.enabled || !driver || !auth.secret) {
      return errorJson(c, new KilnError("not_found", "GitHub sign-in is not configured"));
    }
    const expected = getCookie(c, STATE_COOKIE);
    deleteCookie(c, STATE_COOKIE, { path: "/v1/auth/github" });
    const denied = c.req.query("error");
    if (denied) return signInFailed(c, new KilnError("unauthorized", `GitHub sign-in was not completed (${denied.slice(0, 100)})`));
    const state = c.req.query("state") ?? "";
    const code = c.req.query("code") ?? "";
    if (!expected || !state || !sameString(expected, state)) {
      return signInFailed(c, new KilnError("invalid_input", "sign-in state does not match; start again from the sign-in button"));
    }
    if (!code) return signInFailed(c, new KilnError("invalid_input", "GitHub did not return a sign-in code"));
    let session;
    try {
      session = await driver.exchangeOAuthCode({ code, redirectUrl: `${baseUrl(c, auth)}${CALLBACK_PATH}` });
    } catch (error) {
      if (error instanceof KilnError) return signInFailed(c, error);
      throw error;
    }
    const accounts = session.installations.filter((i) => !i.suspended && i.account).map((i) => i.account!.login);
    const claims = sessionClaims(session.user, accounts, auth.sessionTtlMs);
    setCookie(c, SESSION_COOKIE, signSession(auth.secret, claims), {
      httpOnly: true,
      sameSite: "Lax",
      secure: isHttps(c, auth),
      path: "/",
      maxAge: Math.floor(auth.sessionTtlMs / 1000),
    });
    log(`[kiln] ${session.user.login} signed in (orgs: ${claims.orgs.join(", ") || "none"})`);
    return c.redirect("/", 302);
  });

  app.post("/v1/auth/logout", (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: "/", secure: isHttps(c, auth), httpOnly: true, sameSite: "Lax" });
    return c.body(null, 204);
  });
}
