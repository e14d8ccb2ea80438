// Kiln's only door to the engine for clients: `/v1/rivet/*` on Kiln's own HTTP server. It forwards actor
// gateway traffic (HTTP actions and connection WebSockets, streamed both ways) and the metadata probe the
// RivetKit client makes, and refuses everything else — the engine's admin REST API (list, create,
// destroy actors, runner configs) is never reachable from a client, whether sign-in is on or off.
// With sign-in on, a valid session (or Kiln-internal) token must come with the request before it is
// forwarded; the actors then still check org membership against the key (auth/actor-auth.ts).
// The engine's admin token is added here, server-side, and never sent to a client.
import type { Server, ServerWebSocket } from "bun";
import { getCookie } from "hono/cookie";
import type { Hono } from "hono";
import type { ActorAuth } from "../auth/actor-auth.ts";
import { SESSION_COOKIE } from "../auth/routes.ts";
import { checkGatewayTarget } from "./gateway-target.ts";

export const RIVET_PROXY_PREFIX = "/v1/rivet";
const TOKEN_PROTOCOL = "rivet_token.";
/** Client headers never forwarded: hop-by-hop, Kiln's own credentials, and engine credentials. */
const DROP_HEADERS = ["host", "connection", "cookie", "authorization", "x-rivet-token", "content-length", "accept-encoding"];

export interface GatewayProxyOptions {
  engineEndpoint: string;
  engineToken: string;
  auth: ActorAuth;
}

type Route = { kind: "gateway"; path: string } | { kind: "metadata" } | { kind: "refused" } | { kind: "malformed" };

/** Only `/gateway/<actor or name>/…` (actor traffic) and `GET /metadata` pass. */
export function classify(method: string, rest: string, search = ""): Route {
  // The engine answers a malformed escape with a 500: refuse it here as the client's error.
  if (safeDecode(rest) === undefined || safeDecode(search) === undefined) return { kind: "malformed" };
  if (rest === "/metadata" && method === "GET") return { kind: "metadata" };
  // A dot segment could be normalised by the engine into an admin path (`/gateway/../actors`).
  if (/^\/gateway\/[^/?#]+/.test(rest) && !/(^|\/)\.\.?(\/|$)/.test(rest) && !/%2e|%2f|%5c|\\/i.test(rest.split("/").slice(0, 3).join("/"))) {
    // The actor is named by a well-formed key (or is an actor id) before any actor code runs.
    return checkGatewayTarget(rest, new URLSearchParams(search)) ? { kind: "gateway", path: rest } : { kind: "malformed" };
  }
  return { kind: "refused" };
}

function connParamsToken(raw: string | null | undefined): string | undefined {
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as { token?: unknown } | null;
    return typeof parsed?.token === "string" ? parsed.token : undefined;
  } catch {
    return undefined; // not JSON: no token
  }
}

function refuse(status: 400 | 401 | 403 | 404, code: string, message: string): Response {
  return Response.json({ group: "kiln", code, message }, { status });
}

export class GatewayProxy {
  private readonly engine: URL;

  constructor(private readonly options: GatewayProxyOptions) {
    this.engine = new URL(options.engineEndpoint);
  }

  /** With sign-in on, the request must carry a token Kiln issued; null when it may pass. */
  private authorize(token: string | undefined): Response | null {
    if (!this.options.auth.enabled) return null;
    if (!token) return refuse(401, "unauthorized", "sign in required: no session token was sent");
    if (!this.options.auth.acceptsToken(token)) return refuse(401, "unauthorized", "the session token is invalid or expired");
    return null;
  }

  private upstreamUrl(path: string, search: string, ws = false): string {
    const url = new URL(path + search, this.engine);
    if (ws) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.toString();
  }

  mount(app: Hono): void {
    app.all(`${RIVET_PROXY_PREFIX}/*`, async (c) => {
      const url = new URL(c.req.url);
      const route = classify(c.req.method, url.pathname.slice(RIVET_PROXY_PREFIX.length), url.search);
      if (route.kind === "malformed") return refuse(400, "invalid_input", "malformed gateway request (URL encoding, actor key or target)");
      if (route.kind === "refused") return refuse(403, "forbidden", "only actor gateway traffic goes through Kiln");
      if (route.kind === "metadata") return this.metadata();
      const denied = this.authorize(connParamsToken(c.req.header("x-rivet-conn-params")) ?? getCookie(c, SESSION_COOKIE));
      if (denied) return denied;
      const headers = new Headers(c.req.raw.headers);
      for (const name of DROP_HEADERS) headers.delete(name);
      headers.set("x-rivet-token", this.options.engineToken);
      const hasBody = c.req.method !== "GET" && c.req.method !== "HEAD";
      const upstream = await fetch(this.upstreamUrl(route.path, url.search), {
        method: c.req.method,
        headers,
        body: hasBody ? c.req.raw.body : undefined,
        redirect: "manual",
        // A fresh loopback connection per call: a pooled socket the engine has half-closed can stall a call.
        keepalive: false,
        signal: c.req.raw.signal,
        // Stream the request body instead of buffering it.
        ...(hasBody ? { duplex: "half" } : {}),
      } as RequestInit);
      const out = new Headers(upstream.headers);
      out.delete("content-encoding"); // fetch already decoded it
      out.delete("content-length");
      return new Response(upstream.body, { status: upstream.status, headers: out });
    });
  }

  /** The client's start-up probe; any "use this endpoint/token instead" hint is removed. */
  private async metadata(): Promise<Response> {
    const response = await fetch(this.upstreamUrl("/metadata", ""), {
      headers: { "x-rivet-token": this.options.engineToken },
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) return refuse(404, "not_found", `engine metadata answered ${response.status}`);
    const body = (await response.json()) as Record<string, unknown>;
    delete body.clientEndpoint;
    delete body.clientNamespace;
    delete body.clientToken;
    return Response.json(body);
  }

  /**
   * Bun.serve hook: a WebSocket upgrade for gateway traffic is authorised, the engine side opened, then
   * the client side upgraded with the protocol the engine chose. Returns null for every other request.
   */
  async upgrade(req: Request, server: Server<ProxySocketData>): Promise<Response | undefined | null> {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") return null;
    const url = new URL(req.url);
    if (!url.pathname.startsWith(`${RIVET_PROXY_PREFIX}/`)) return null;
    const route = classify("GET", url.pathname.slice(RIVET_PROXY_PREFIX.length), url.search);
    if (route.kind === "malformed") return refuse(400, "invalid_input", "malformed gateway request (URL encoding, actor key or target)");
    if (route.kind !== "gateway") return refuse(403, "forbidden", "only actor gateway traffic goes through Kiln");
    const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
    // A refused upgrade is only a failed socket to the RivetKit client, which retries it forever; so a
    // missing or bad token on a connection is left to the actor's onBeforeConnect, which refuses it in
    // protocol (typed `unauthorized`/`forbidden`) before any action runs. HTTP calls are checked here.
    // The client never chooses the engine credential; Kiln adds its own.
    const protocols = [...offered.filter((p) => !p.startsWith(TOKEN_PROTOCOL)), `${TOKEN_PROTOCOL}${this.options.engineToken}`];
    const upstream = new WebSocket(this.upstreamUrl(route.path, url.search, true), {
      protocols,
      headers: { "x-rivet-token": this.options.engineToken },
    } as unknown as string[]);
    upstream.binaryType = "arraybuffer";
    const opened = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      upstream.addEventListener("open", () => (clearTimeout(timer), resolve(true)), { once: true });
      upstream.addEventListener("close", () => (clearTimeout(timer), resolve(false)), { once: true });
    });
    if (!opened) {
      upstream.close();
      return new Response("the actor gateway did not accept the connection", { status: 502 });
    }
    const data: ProxySocketData = { upstream, pending: [], client: null };
    upstream.addEventListener("message", (event) => {
      const payload = event.data as string | ArrayBuffer;
      if (data.client) data.client.send(payload);
      else data.pending.push(payload);
    });
    upstream.addEventListener("close", (event) => data.client?.close(closeCode(event.code), event.reason));
    const chosen = upstream.protocol;
    const ok = server.upgrade(req, { data, headers: chosen ? { "sec-websocket-protocol": chosen } : undefined });
    if (!ok) {
      upstream.close();
      return new Response("websocket upgrade failed", { status: 400 });
    }
    return undefined;
  }

  readonly websocket = {
    open(ws: ServerWebSocket<ProxySocketData>) {
      ws.data.client = ws;
      for (const payload of ws.data.pending.splice(0)) ws.send(payload);
      if (ws.data.upstream.readyState >= WebSocket.CLOSING) ws.close();
    },
    message(ws: ServerWebSocket<ProxySocketData>, message: string | Buffer) {
      if (ws.data.upstream.readyState === WebSocket.OPEN) ws.data.upstream.send(message);
    },
    close(ws: ServerWebSocket<ProxySocketData>, code: number, reason: string) {
      ws.data.client = null;
      if (ws.data.upstream.readyState < WebSocket.CLOSING) ws.data.upstream.close(closeCode(code), reason);
    },
  };
}

export interface ProxySocketData {
  upstream: WebSocket;
  pending: (string | ArrayBuffer)[];
  client: ServerWebSocket<ProxySocketData> | null;
}

/** Codes a peer may send in a close frame (1005/1006/1015 are reserved for "none"/"abnormal"). */
function closeCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) || (code >= 1001 && code <= 1014 && code !== 1005 && code !== 1006) ? code : 1000;
}

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
