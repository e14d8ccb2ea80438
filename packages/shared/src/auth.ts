// Sign-in contracts. Without a GitHub App with OAuth configured, Kiln runs in single-user mode: auth is
// off and every organization is reachable. With it, a signed-in user reaches only the organizations
// (GitHub accounts the App is installed on) recorded in their session token.
import { z } from "zod";
import { OrgIdSchema } from "./domain.ts";

export const SessionUserSchema = z.object({
  /** GitHub user id. */
  id: z.number().int(),
  login: z.string(),
  name: z.string().nullable(),
  avatarUrl: z.string().nullable(),
});
export type SessionUser = z.infer<typeof SessionUserSchema>;

/** What `GET /v1/auth/me` tells the UI (the client keeps the token to itself). */
export const SessionInfoSchema = z.object({
  /** False in single-user mode: no sign-in, every organization is reachable. */
  authEnabled: z.boolean(),
  /** A GitHub App is configured (repo picker, push, pull requests). */
  githubConfigured: z.boolean(),
  user: SessionUserSchema.nullable(),
  /** Organizations the user may open (empty when signed out; ["default"] in single-user mode). */
  orgs: z.array(OrgIdSchema),
  /** Where a browser starts the GitHub sign-in (null when sign-in is off). */
  signInUrl: z.string().nullable(),
  /** Where to install the GitHub App on another account (null when unknown). */
  installUrl: z.string().nullable(),
  /** Session expiry (ms since epoch), null when signed out or auth is off. */
  expiresAt: z.number().nullable(),
});
export type SessionInfo = z.infer<typeof SessionInfoSchema>;

/**
 * The body of `GET /v1/auth/me`: the session info plus the bearer token the client passes to actors as
 * connection params. The token is the user's own credential; it is never logged.
 */
export const AuthMeResponseSchema = SessionInfoSchema.extend({ token: z.string().nullable() });
export type AuthMeResponse = z.infer<typeof AuthMeResponseSchema>;

/** Connection params every actor call carries when auth is on. */
export const ActorConnParamsSchema = z.object({ token: z.string().min(1).max(8192) });
export type ActorConnParams = z.infer<typeof ActorConnParamsSchema>;

/** Query parameter on `/` that carries why a browser's GitHub sign-in failed back to the sign-in screen. */
export const SIGN_IN_ERROR_PARAM = "sign_in_error";
