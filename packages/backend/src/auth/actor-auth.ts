// Access control at the actor edge. RivetKit actions are reached directly from clients (the gateway
// does no end-user auth), so every Kiln actor runs `onBeforeConnect` — which RivetKit calls for
// connections, stateless action calls, queue sends and actor-to-actor calls alike — and records who
// called in the connection state. Cron-invoked actions have no connection and count as internal.
//
//   auth off (single-user mode) → everything is allowed, exactly as before;
//   internal token              → another Kiln actor or the backend's own routes;
//   user session token          → allowed only on actors of an org listed in the token.
import { createHmac, timingSafeEqual } from "node:crypto";
import { type ActorKeySchema, ActorConnParamsSchema, KilnError } from "@kiln/shared";
import { toUserError, validate } from "../errors.ts";
import { internalToken, isInternalToken, verifySession } from "./tokens.ts";

export type Principal =
  | { kind: "anonymous" }
  | { kind: "internal" }
  | { kind: "user"; login: string; orgs: string[] };

interface KeyedCtx {
  key: readonly string[];
}

const orgOfKey = (key: readonly string[]) => (key[0] === "org" ? (key[1] ?? null) : null);

export class ActorAuth {
  private readonly internal: string | null;

  constructor(private readonly secret: string | null) {
    this.internal = secret ? internalToken(secret) : null;
  }

  get enabled(): boolean {
    return this.secret !== null;
  }

  /** Params for actor-to-actor calls and the backend's own calls (undefined when auth is off). */
  internalParams(): { token: string } | undefined {
    return this.internal ? { token: this.internal } : undefined;
  }

  /** Who is calling; throws unauthorized/forbidden as a client-visible error. */
  principal(key: readonly string[], params: unknown): Principal {
    if (!this.secret) return { kind: "anonymous" };
    const parsed = ActorConnParamsSchema.safeParse(params);
    if (!parsed.success) throw toUserError(new KilnError("unauthorized", "sign in required: no session token was sent"));
    const { token } = parsed.data;
    if (isInternalToken(this.secret, token)) return { kind: "internal" };
    let claims;
    try {
      claims = verifySession(this.secret, token);
    } catch (error) {
      if (error instanceof KilnError) throw toUserError(error);
      throw error;
    }
    const orgId = orgOfKey(key);
    if (orgId === null || !claims.orgs.includes(orgId)) {
      throw toUserError(new KilnError("forbidden", `you are not a member of organization ${orgId ?? "(none)"}`));
    }
    return { kind: "user", login: claims.login, orgs: claims.orgs };
  }

  /** For the gateway proxy: is this a token Kiln issued (a live session or the internal token)? */
  acceptsToken(token: string): boolean {
    if (!this.secret) return true;
    if (isInternalToken(this.secret, token)) return true;
    try {
      verifySession(this.secret, token);
      return true;
    } catch (error) {
      if (error instanceof KilnError) return false;
      throw error;
    }
  }

  /** RivetKit hook: reject the connection/call before any action runs. */
  readonly onBeforeConnect = (c: KeyedCtx, params: unknown): void => {
    this.principal(c.key, params);
  };

  /** RivetKit hook: the verified principal becomes the connection state. */
  readonly createConnState = (c: KeyedCtx, params: unknown): Principal => this.principal(c.key, params);

  /**
   * The connection hooks for an actor whose key must have `keySchema`'s shape: a malformed org or task
   * id in the key is `invalid_input` before the caller is even looked at (sign-in on or off).
   */
  hooksFor(keySchema: ActorKeySchema): {
    onBeforeConnect: (c: KeyedCtx, params: unknown) => void;
    createConnState: (c: KeyedCtx, params: unknown) => Principal;
  } {
    return {
      onBeforeConnect: (c, params) => {
        validate(keySchema, c.key, "actor key");
        this.principal(c.key, params);
      },
      createConnState: (c, params) => {
        validate(keySchema, c.key, "actor key");
        return this.principal(c.key, params);
      },
    };
  }

  /** For queue `canPublish`: only Kiln itself may enqueue (in-actor sends skip this hook). */
  readonly internalOnly = (c: unknown): boolean => !this.enabled || this.isInternal(c);

  isInternal(c: unknown): boolean {
    if (!this.enabled) return true;
    const conn = (c as { conn?: { state?: Principal } | null }).conn;
    // Scheduled (cron) actions run without a connection.
    if (!conn) return true;
    return conn.state?.kind === "internal";
  }

  /** Proof that Kiln itself creates the actor with this key (null when auth is off). */
  createProof(key: readonly string[]): string | null {
    if (!this.secret) return null;
    return createHmac("sha256", this.secret).update(`kiln:create:v1:${JSON.stringify(key)}`).digest("base64url");
  }

  /** For `onCreate`: reject input that does not carry this key's create proof. */
  requireCreateProof(key: readonly string[], input: unknown): void {
    const expected = this.createProof(key);
    if (expected === null) return;
    const given = (input as Record<string, unknown> | null)?.[CREATE_PROOF_FIELD];
    const a = Buffer.from(expected);
    const b = Buffer.from(typeof given === "string" ? given : "");
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      throw toUserError(new KilnError("forbidden", "only Kiln may create this actor"));
    }
  }

  /** Guard for actions only other actors may call (initialize, setPullRequest, receiveWebhook…). */
  requireInternal(c: unknown, action: string): void {
    if (!this.isInternal(c)) throw toUserError(new KilnError("forbidden", `${action} is internal to Kiln`));
  }
}

/**
 * RivetKit runs `onCreate` for `client.x.create(key, { input })` without `onBeforeConnect`, so an actor
 * whose creation does work (the task bootstraps and provisions) must check its creator itself: the
 * creating actor puts `createProof(key)` in the input (an HMAC of the key; useless for any other key).
 */
export const CREATE_PROOF_FIELD = "createProof";

export function createProofFor(auth: ActorAuth, key: readonly string[]): Record<string, string> {
  const proof = auth.createProof(key);
  return proof ? { [CREATE_PROOF_FIELD]: proof } : {};
}

/** Single-user mode: no checks. */
export const AUTH_DISABLED = new ActorAuth(null);
