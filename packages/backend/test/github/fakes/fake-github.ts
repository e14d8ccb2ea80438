// A loopback fake of the GitHub REST routes Kiln uses. It is strict where GitHub is strict: the App
// JWT is verified with the App's public key (RS256, iss, iat/exp), installation tokens expire and
// are scoped to repos/permissions, and every JSON body it sends is validated against GitHub's
// published OpenAPI description (a violation becomes a 500 so tests fail loudly).
import { createPublicKey, type KeyObject, randomBytes, verify as verifySignature } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { GitAccess, GitAuthDecision, GitServer } from "./git-server.ts";
import { OpenApiResponseValidator } from "./openapi.ts";

type Json = Record<string, unknown>;
type Permission = "read" | "write";
type Permissions = Record<string, Permission>;

export interface FakeGitHubOptions {
  appId: number;
  appSlug?: string;
  /** PEM public key matching the private key the App signs its JWTs with. */
  publicKeyPem: string;
  oauth?: { clientId: string; clientSecret: string };
  /** Installation token lifetime (GitHub: 1 hour). */
  tokenTtlMs?: number;
  /** GitHub caps per_page at 100; lower it to force real pagination. */
  maxPerPage?: number;
  /** Branches, SHAs and clone URLs come from this real git server's bare repos. */
  git?: GitServer;
  /** Share one (it parses a 13 MB description). */
  validator?: OpenApiResponseValidator;
}

export interface FakeInstallation {
  id: number;
  account: { login: string; id: number; type: "Organization" | "User" };
  repositorySelection: "all" | "selected";
  permissions: Permissions;
}

export interface FakeRepo {
  id: number;
  owner: string;
  name: string;
  fullName: string;
  defaultBranch: string;
  private: boolean;
  installationId: number;
  /** Used when no git server is attached. */
  branches: Map<string, string>;
}

export interface FakeToken {
  token: string;
  installationId: number;
  createdAt: number;
  expiresAt: number;
  /** null = every repo of the installation. */
  repositories: string[] | null;
  permissions: Permissions;
  revoked: boolean;
}

export interface FakePull {
  id: number;
  number: number;
  repo: string;
  title: string;
  body: string | null;
  head: string;
  headSha: string;
  base: string;
  state: "open" | "closed";
  draft: boolean;
  mergedAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** GitHub computes mergeability lazily: the first read after create says null/unknown. */
  mergeableComputed: boolean;
}

export interface FakeCheckRun {
  id: number;
  repo: string;
  headSha: string;
  name: string;
  status: "queued" | "in_progress" | "completed";
  conclusion: string | null;
}

export interface FakeReview {
  id: number;
  repo: string;
  pull: number;
  user: string;
  state: "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED" | "DISMISSED" | "PENDING";
  submittedAt: string;
}

export interface FakeUser {
  id: number;
  login: string;
  name: string | null;
  email: string | null;
  installationIds: number[];
}

export interface RequestRecord {
  method: string;
  path: string;
  route: string | null;
  status: number;
  auth: AuthKind | "oauth";
  apiVersion: string | null;
  userAgent: string | null;
}

type AuthKind = "app" | "installation" | "user" | "none";

interface Ctx {
  url: URL;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Json;
  token?: FakeToken;
  user?: FakeUser;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Sent as is instead of JSON (web pages and images, not REST): set content-type in headers. */
  raw?: string | Buffer;
}

interface Route {
  method: string;
  /** The OpenAPI path template; also the key used for schema validation. */
  template: string;
  auth: AuthKind;
  regex: RegExp;
  names: string[];
  handler: (ctx: Ctx) => Reply | Promise<Reply>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Json = {},
  ) {
    super(message);
  }
}

const DOCS = "https://docs.github.com/rest";
/** github.com's browser session cookie: the authorize page knows who is signed in by it. */
export const WEB_SESSION_COOKIE = "user_session";
/** A 1×1 PNG: what the fake serves at the avatar_url it hands out. */
const AVATAR_PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=",
  "base64",
);
const DEFAULT_INSTALLATION_PERMISSIONS: Permissions = {
  contents: "write",
  pull_requests: "write",
  checks: "read",
  metadata: "read",
};

function b64url(input: string): Buffer {
  return Buffer.from(input.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

function randomToken(prefix: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = randomBytes(36);
  let out = prefix;
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FakeGitHub {
  url = "";
  readonly validator: OpenApiResponseValidator;
  readonly requests: RequestRecord[] = [];
  readonly schemaViolations: string[] = [];
  readonly installations = new Map<number, FakeInstallation>();
  readonly repos = new Map<string, FakeRepo>();
  readonly tokens: FakeToken[] = [];
  readonly pulls: FakePull[] = [];
  readonly checkRuns: FakeCheckRun[] = [];
  readonly reviews: FakeReview[] = [];
  readonly users = new Map<string, FakeUser>();
  /** POST /repos/{o}/{r}/pulls calls that created a PR. */
  pullCreates = 0;
  tokenTtlMs: number;
  /** Added before every response (deadline tests). */
  latencyMs = 0;

  private server!: http.Server;
  private readonly publicKey: KeyObject;
  private readonly routes: Route[] = [];
  private readonly failures: Array<{ method: string; template: string; status: number; message: string; headers?: Record<string, string> }> = [];
  private readonly corruptions: Array<{ method: string; template: string; mutate: (body: Json) => void }> = [];
  private readonly oauthCodes = new Map<string, { login: string; expiresAt: number }>();
  private readonly userTokens = new Map<string, { login: string; expiresAt: number }>();
  /** `user_session` cookie value → login: who is signed in to "github.com" in a browser. */
  private readonly webSessions = new Map<string, string>();
  private nextId = 1000;
  private readonly maxPerPage: number;

  private constructor(private readonly options: FakeGitHubOptions) {
    this.publicKey = createPublicKey(options.publicKeyPem);
    this.tokenTtlMs = options.tokenTtlMs ?? 60 * 60_000;
    this.maxPerPage = Math.min(options.maxPerPage ?? 100, 100);
    this.validator = options.validator ?? new OpenApiResponseValidator();
    this.defineRoutes();
  }

  static async start(options: FakeGitHubOptions): Promise<FakeGitHub> {
    const fake = new FakeGitHub(options);
    fake.server = http.createServer((req, res) => void fake.dispatch(req, res));
    await new Promise<void>((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((e) => (e ? reject(e) : resolve())));
  }

  get slug(): string {
    return this.options.appSlug ?? "kiln-test-app";
  }

  // --- test controls --------------------------------------------------------------------------

  addInstallation(input: { account: string; type?: "Organization" | "User"; permissions?: Permissions; id?: number }): FakeInstallation {
    const inst: FakeInstallation = {
      id: input.id ?? this.nextId++,
      account: { login: input.account, id: this.nextId++, type: input.type ?? "Organization" },
      repositorySelection: "selected",
      permissions: input.permissions ?? { ...DEFAULT_INSTALLATION_PERMISSIONS },
    };
    this.installations.set(inst.id, inst);
    return inst;
  }

  /** Registers the repo (and creates its bare repo on the git server, when attached). */
  async addRepo(input: {
    installationId: number;
    owner: string;
    name: string;
    defaultBranch?: string;
    private?: boolean;
    files?: Record<string, string>;
  }): Promise<FakeRepo> {
    const repo: FakeRepo = {
      id: this.nextId++,
      owner: input.owner,
      name: input.name,
      fullName: `${input.owner}/${input.name}`,
      defaultBranch: input.defaultBranch ?? "main",
      private: input.private ?? true,
      installationId: input.installationId,
      branches: new Map([[input.defaultBranch ?? "main", "0".repeat(40)]]),
    };
    if (this.options.git) {
      await this.options.git.createRepo(repo.fullName, { defaultBranch: repo.defaultBranch, ...(input.files ? { files: input.files } : {}) });
    }
    this.repos.set(repo.fullName.toLowerCase(), repo);
    return repo;
  }

  setCheckRun(repo: string, headSha: string, name: string, status: FakeCheckRun["status"], conclusion: string | null = null) {
    this.checkRuns.push({ id: this.nextId++, repo, headSha, name, status, conclusion });
  }

  addReview(repo: string, pull: number, user: string, state: FakeReview["state"]) {
    this.reviews.push({ id: this.nextId++, repo, pull, user, state, submittedAt: iso(Date.now() + this.reviews.length * 1000) });
  }

  mergePull(repo: string, number: number) {
    const p = this.pull(repo, number);
    p.state = "closed";
    p.mergedAt = iso(Date.now());
  }

  closePull(repo: string, number: number) {
    this.pull(repo, number).state = "closed";
  }

  pull(repo: string, number: number): FakePull {
    const p = this.pulls.find((x) => x.repo.toLowerCase() === repo.toLowerCase() && x.number === number);
    if (!p) throw new Error(`no PR ${repo}#${number}`);
    return p;
  }

  addUser(input: { login: string; name?: string; installationIds: number[] }): FakeUser {
    const user: FakeUser = { id: this.nextId++, login: input.login, name: input.name ?? null, email: null, installationIds: input.installationIds };
    this.users.set(user.login, user);
    return user;
  }

  /** What GitHub would append to the OAuth callback URL after the user authorises. */
  issueOAuthCode(login: string): string {
    const code = randomBytes(10).toString("hex");
    this.oauthCodes.set(code, { login, expiresAt: Date.now() + 10 * 60_000 });
    return code;
  }

  /**
   * A github.com browser session for `login`. Put it in a browser as the `user_session` cookie for
   * this fake's URL: GET /login/oauth/authorize then signs that user in (as if they had already
   * authorised the App), like GitHub does for a signed-in user.
   */
  createWebSession(login: string): { name: string; value: string } {
    if (!this.users.has(login)) throw new Error(`no fake user ${login}: addUser first`);
    const value = randomBytes(24).toString("base64url");
    this.webSessions.set(value, login);
    return { name: WEB_SESSION_COOKIE, value };
  }

  expireAllTokens() {
    for (const t of this.tokens) t.expiresAt = Math.min(t.expiresAt, Date.now() - 1);
  }

  revokeAllTokens() {
    for (const t of this.tokens) t.revoked = true;
  }

  /** The next matching request gets this error instead (then the route behaves normally again). */
  failNext(method: string, template: string, status: number, message: string, headers?: Record<string, string>) {
    this.failures.push({ method, template, status, message, ...(headers ? { headers } : {}) });
  }

  /** Break the next body of this route (to prove schema violations surface as 500s). */
  corruptNext(method: string, template: string, mutate: (body: Json) => void) {
    this.corruptions.push({ method, template, mutate });
  }

  requestsTo(method: string, template: string): RequestRecord[] {
    return this.requests.filter((r) => r.method === method && r.route === template);
  }

  /** For the git server: may `token` read/write `repoFullName`? */
  authorizeGit(token: string | null, repoFullName: string, access: GitAccess): GitAuthDecision {
    if (!token) return "unauthenticated";
    const t = this.tokens.find((x) => x.token === token);
    if (!t || t.revoked || t.expiresAt <= Date.now()) return "unauthenticated";
    const repo = this.repos.get(repoFullName.toLowerCase());
    if (!repo || repo.installationId !== t.installationId) return "not_found";
    if (t.repositories && !t.repositories.includes(repo.name)) return "not_found";
    if (access === "write" && t.permissions.contents !== "write") return "forbidden";
    return "ok";
  }

  // --- HTTP plumbing ----------------------------------------------------------------------------

  private route(method: string, template: string, auth: AuthKind, handler: Route["handler"]) {
    const names: string[] = [];
    const pattern = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{(\w+)\}/g, (_m, name: string) => {
      names.push(name);
      return "([^/]+)";
    });
    this.routes.push({ method, template, auth, regex: new RegExp(`^${pattern}$`), names, handler });
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const method = req.method ?? "GET";
    const record: RequestRecord = {
      method,
      path: url.pathname,
      route: null,
      status: 0,
      auth: "none",
      apiVersion: (req.headers["x-github-api-version"] as string | undefined) ?? null,
      userAgent: req.headers["user-agent"] ?? null,
    };
    this.requests.push(record);
    let reply: Reply;
    let validate = true;
    try {
      const raw = await readBody(req);
      if (this.latencyMs > 0) await sleep(this.latencyMs);
      if (method === "POST" && url.pathname === "/login/oauth/access_token") {
        record.auth = "oauth";
        validate = false; // the OAuth web endpoint is not part of the REST description
        reply = this.oauthAccessToken(parseBody(raw, req.headers["content-type"]));
      } else if (method === "GET" && url.pathname === "/login/oauth/authorize") {
        record.auth = "oauth";
        validate = false; // a web page, not REST
        reply = this.oauthAuthorize(url, req.headers.cookie);
      } else if (method === "GET" && /^\/avatars\/[^/]+$/.test(url.pathname)) {
        validate = false; // GitHub serves avatars from avatars.githubusercontent.com; the fake from itself
        reply = { status: 200, headers: { "content-type": "image/png", "cache-control": "max-age=300" }, raw: AVATAR_PNG };
      } else {
        const found = this.match(method, url.pathname);
        if (!found) throw new HttpError(404, "Not Found");
        const { route, params } = found;
        record.route = route.template;
        record.auth = route.auth;
        const ctx: Ctx = { url, params, query: url.searchParams, body: parseBody(raw, req.headers["content-type"]) };
        this.authenticate(route.auth, req.headers.authorization, ctx);
        const failIndex = this.failures.findIndex((f) => f.method === method && f.template === route.template);
        if (failIndex >= 0) {
          const f = this.failures.splice(failIndex, 1)[0]!;
          throw new HttpError(f.status, f.message, f.headers ? { __headers: f.headers } : {});
        }
        reply = await route.handler(ctx);
        const corruptIndex = this.corruptions.findIndex((c) => c.method === method && c.template === route.template);
        if (corruptIndex >= 0 && typeof reply.body === "object" && reply.body !== null) {
          this.corruptions.splice(corruptIndex, 1)[0]!.mutate(reply.body as Json);
        }
      }
    } catch (error) {
      if (error instanceof HttpError) {
        const { __headers, ...extra } = error.extra as Json & { __headers?: Record<string, string> };
        reply = {
          status: error.status,
          body: { message: error.message, documentation_url: DOCS, ...extra },
          ...(__headers ? { headers: __headers } : {}),
        };
      } else {
        reply = { status: 500, body: { message: `fake-github bug: ${error instanceof Error ? error.stack : String(error)}` } };
        validate = false;
      }
    }
    if (validate && record.route) {
      const violations = this.validator.validate(method, record.route, reply.status, reply.body);
      if (violations.length > 0) {
        this.schemaViolations.push(...violations);
        reply = { status: 500, body: { message: "fake-github: response violates GitHub's OpenAPI schema", violations } };
      }
    }
    record.status = reply.status;
    const text = reply.raw ?? (reply.body === undefined ? "" : JSON.stringify(reply.body));
    res.writeHead(reply.status, {
      "content-type": "application/json; charset=utf-8",
      "x-github-media-type": "github.v3; format=json",
      ...reply.headers,
    });
    res.end(text);
  }

  private match(method: string, pathname: string): { route: Route; params: Record<string, string> } | null {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.regex.exec(pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1] ?? "")));
      return { route, params };
    }
    if (pathMatched) throw new HttpError(404, "Not Found"); // GitHub answers unknown verbs with 404
    return null;
  }

  private authenticate(kind: AuthKind, header: string | undefined, ctx: Ctx): void {
    if (kind === "none") return;
    if (!header) throw new HttpError(401, "Requires authentication");
    const [scheme = "", value = ""] = header.trim().split(/\s+/, 2);
    if (kind === "app") {
      if (scheme.toLowerCase() !== "bearer") throw new HttpError(401, "A JSON web token could not be decoded");
      this.verifyAppJwt(value);
      return;
    }
    if (!/^(token|bearer)$/i.test(scheme)) throw new HttpError(401, "Bad credentials");
    if (kind === "installation") {
      const t = this.tokens.find((x) => x.token === value);
      if (!t || t.revoked || t.expiresAt <= Date.now()) throw new HttpError(401, "Bad credentials");
      ctx.token = t;
      return;
    }
    const u = this.userTokens.get(value);
    const user = u && u.expiresAt > Date.now() ? this.users.get(u.login) : undefined;
    if (!user) throw new HttpError(401, "Bad credentials");
    ctx.user = user;
  }

  /** RS256 signature with the App's public key, iss = App id, iat not in the future, exp ≤ 10 min. */
  private verifyAppJwt(jwt: string): void {
    const parts = jwt.split(".");
    if (parts.length !== 3) throw new HttpError(401, "A JSON web token could not be decoded");
    const [h = "", p = "", s = ""] = parts;
    let header: Json;
    let payload: Json;
    try {
      header = JSON.parse(b64url(h).toString("utf8")) as Json;
      payload = JSON.parse(b64url(p).toString("utf8")) as Json;
    } catch {
      throw new HttpError(401, "A JSON web token could not be decoded");
    }
    if (header.alg !== "RS256") throw new HttpError(401, "A JSON web token could not be decoded");
    const ok = verifySignature("RSA-SHA256", Buffer.from(`${h}.${p}`), this.publicKey, b64url(s));
    if (!ok) throw new HttpError(401, "A JSON web token could not be decoded");
    if (String(payload.iss) !== String(this.options.appId)) {
      throw new HttpError(401, "'Issuer' claim ('iss') must be an Integer");
    }
    const now = Math.floor(Date.now() / 1000);
    const { iat, exp } = payload;
    if (typeof iat !== "number" || iat > now + 60) {
      throw new HttpError(401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued");
    }
    if (typeof exp !== "number" || exp <= now) {
      throw new HttpError(401, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires");
    }
    if (exp - now > 600 + 60 || exp - iat > 660) {
      throw new HttpError(401, "'Expiration time' claim ('exp') is too far in the future");
    }
  }

  private paginate<T>(ctx: Ctx, items: T[]): { page: T[]; headers: Record<string, string> } {
    const perPage = Math.max(1, Math.min(Number(ctx.query.get("per_page")) || 30, this.maxPerPage));
    const page = Math.max(1, Number(ctx.query.get("page")) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (n: number) => {
      const q = new URLSearchParams(ctx.query);
      q.set("page", String(n));
      q.set("per_page", String(perPage));
      return `<${this.url}${ctx.url.pathname}?${q.toString()}>`;
    };
    const links: string[] = [];
    if (page < last) links.push(`${link(page + 1)}; rel="next"`, `${link(last)}; rel="last"`);
    if (page > 1) links.push(`${link(1)}; rel="first"`, `${link(page - 1)}; rel="prev"`);
    return { page: items.slice((page - 1) * perPage, page * perPage), headers: links.length ? { link: links.join(", ") } : {} };
  }

  /** Repo visible to the request's installation token, or 404 like GitHub. */
  private visibleRepo(ctx: Ctx): FakeRepo {
    const repo = this.repos.get(`${ctx.params.owner}/${ctx.params.repo}`.toLowerCase());
    const t = ctx.token;
    if (!repo || !t || repo.installationId !== t.installationId || (t.repositories && !t.repositories.includes(repo.name))) {
      throw new HttpError(404, "Not Found");
    }
    return repo;
  }

  private requirePermission(ctx: Ctx, name: string, level: Permission) {
    const has = ctx.token?.permissions[name];
    if (!has || (level === "write" && has !== "write")) throw new HttpError(403, "Resource not accessible by integration");
  }

  private async branches(repo: FakeRepo): Promise<Array<{ name: string; sha: string }>> {
    if (this.options.git) return this.options.git.listBranches(repo.fullName);
    return [...repo.branches].map(([name, sha]) => ({ name, sha }));
  }

  private async resolveRef(repo: FakeRepo, ref: string): Promise<string | null> {
    if (/^[0-9a-f]{40}$/.test(ref)) return ref;
    const name = ref.replace(/^refs\/heads\/|^heads\//, "");
    return (await this.branches(repo)).find((b) => b.name === name)?.sha ?? null;
  }

  // --- bodies (GitHub's own examples, patched with the fake's state) --------------------------

  private userBody(login: string, id: number, type: string): Json {
    const u = this.validator.example("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 200) as Json;
    return {
      ...(u.user as Json),
      login,
      id,
      node_id: Buffer.from(`User${id}`).toString("base64"),
      type,
      // Bot logins contain "[bot]": GitHub percent-encodes them in URLs (format: uri).
      url: `${this.url}/users/${encodeURIComponent(login)}`,
      html_url: `${this.url}/${encodeURIComponent(login)}`,
      avatar_url: `${this.url}/avatars/${encodeURIComponent(login)}`,
    };
  }

  private ownerBody(repo: FakeRepo): Json {
    const inst = this.installations.get(repo.installationId);
    return this.userBody(repo.owner, inst?.account.id ?? 1, inst?.account.type ?? "Organization");
  }

  private repositoryBody(repo: FakeRepo): Json {
    const list = this.validator.example("GET", "/installation/repositories", 200) as { repositories: Json[] };
    return {
      ...list.repositories[0],
      id: repo.id,
      node_id: Buffer.from(`Repository${repo.id}`).toString("base64"),
      name: repo.name,
      full_name: repo.fullName,
      owner: this.ownerBody(repo),
      private: repo.private,
      visibility: repo.private ? "private" : "public",
      fork: false,
      archived: false,
      disabled: false,
      default_branch: repo.defaultBranch,
      url: `${this.url}/repos/${repo.fullName}`,
      html_url: `${this.url}/${repo.fullName}`,
      clone_url: this.options.git ? this.options.git.cloneUrl(repo.fullName) : `${this.url}/${repo.fullName}.git`,
    };
  }

  private installationBody(inst: FakeInstallation): Json {
    const ex = (this.validator.example("GET", "/app/installations", 200) as Json[])[0] as Json;
    return {
      ...ex,
      id: inst.id,
      account: this.userBody(inst.account.login, inst.account.id, inst.account.type),
      app_id: this.options.appId,
      app_slug: this.slug,
      target_id: inst.account.id,
      target_type: inst.account.type,
      repository_selection: inst.repositorySelection,
      permissions: inst.permissions,
      access_tokens_url: `${this.url}/app/installations/${inst.id}/access_tokens`,
      repositories_url: `${this.url}/installation/repositories`,
      html_url: `${this.url}/organizations/${inst.account.login}/settings/installations/${inst.id}`,
      suspended_by: null,
      suspended_at: null,
    };
  }

  private async pullBody(p: FakePull, kind: "full" | "simple"): Promise<Json> {
    const repo = this.repos.get(p.repo.toLowerCase())!;
    const ex =
      kind === "full"
        ? (this.validator.example("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 200) as Json)
        : ((this.validator.example("GET", "/repos/{owner}/{repo}/pulls", 200) as Json[])[0] as Json);
    const baseSha = (await this.resolveRef(repo, p.base)) ?? "0".repeat(40);
    const api = `${this.url}/repos/${repo.fullName}`;
    const body: Json = {
      ...ex,
      id: p.id,
      node_id: Buffer.from(`PullRequest${p.id}`).toString("base64"),
      number: p.number,
      url: `${api}/pulls/${p.number}`,
      html_url: `${this.url}/${repo.fullName}/pull/${p.number}`,
      diff_url: `${this.url}/${repo.fullName}/pull/${p.number}.diff`,
      patch_url: `${this.url}/${repo.fullName}/pull/${p.number}.patch`,
      issue_url: `${api}/issues/${p.number}`,
      commits_url: `${api}/pulls/${p.number}/commits`,
      review_comments_url: `${api}/pulls/${p.number}/comments`,
      comments_url: `${api}/issues/${p.number}/comments`,
      statuses_url: `${api}/statuses/${p.headSha}`,
      state: p.state,
      locked: false,
      title: p.title,
      body: p.body,
      user: this.userBody("kiln-test-app[bot]", 41898282, "Bot"),
      labels: [],
      milestone: null,
      active_lock_reason: null,
      created_at: p.createdAt,
      updated_at: p.updatedAt,
      closed_at: p.state === "closed" ? p.updatedAt : null,
      merged_at: p.mergedAt,
      merge_commit_sha: null,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      // GitHub's example omits the now-required `type` on teams; Kiln never requests teams.
      requested_teams: [],
      head: { label: `${repo.owner}:${p.head}`, ref: p.head, sha: p.headSha, user: this.ownerBody(repo), repo: this.repositoryBody(repo) },
      base: { label: `${repo.owner}:${p.base}`, ref: p.base, sha: baseSha, user: this.ownerBody(repo), repo: this.repositoryBody(repo) },
      author_association: "NONE",
      auto_merge: null,
      draft: p.draft,
    };
    if (kind === "full") {
      const merged = p.mergedAt !== null;
      Object.assign(body, {
        merged,
        mergeable: p.mergeableComputed ? !merged : null,
        rebaseable: p.mergeableComputed ? !merged : null,
        mergeable_state: p.mergeableComputed ? (p.draft ? "draft" : "clean") : "unknown",
        merged_by: merged ? this.userBody("merger", 7, "User") : null,
        comments: 0,
        review_comments: 0,
        maintainer_can_modify: false,
        commits: 1,
        additions: 1,
        deletions: 0,
        changed_files: 1,
      });
    }
    return body;
  }

  // --- routes -----------------------------------------------------------------------------------

  private defineRoutes() {
    this.route("GET", "/app", "app", () => {
      const ex = this.validator.example("GET", "/app", 200) as Json;
      return {
        status: 200,
        body: {
          ...ex,
          id: this.options.appId,
          slug: this.slug,
          name: "Kiln Test App",
          client_id: this.options.oauth?.clientId ?? "Iv1.fake",
          html_url: `${this.url}/apps/${this.slug}`,
          installations_count: this.installations.size,
        },
      };
    });

    this.route("GET", "/app/installations", "app", (ctx) => {
      const all = [...this.installations.values()].map((i) => this.installationBody(i));
      const { page, headers } = this.paginate(ctx, all);
      return { status: 200, body: page, headers };
    });

    this.route("GET", "/repos/{owner}/{repo}/installation", "app", (ctx) => {
      const repo = this.repos.get(`${ctx.params.owner}/${ctx.params.repo}`.toLowerCase());
      const inst = repo && this.installations.get(repo.installationId);
      if (!inst) throw new HttpError(404, "Not Found");
      return { status: 200, body: this.installationBody(inst) };
    });

    this.route("POST", "/app/installations/{installation_id}/access_tokens", "app", (ctx) => {
      const inst = this.installations.get(Number(ctx.params.installation_id));
      if (!inst) throw new HttpError(404, "Not Found");
      const requestedRepos = ctx.body.repositories as string[] | undefined;
      const requestedPerms = ctx.body.permissions as Permissions | undefined;
      let scoped: FakeRepo[] | null = null;
      if (requestedRepos !== undefined) {
        scoped = requestedRepos.map((name) => {
          const repo = [...this.repos.values()].find((r) => r.installationId === inst.id && r.name === name);
          if (!repo) {
            throw new HttpError(422, "There is at least one repository that does not exist or is not accessible to the parent installation.");
          }
          return repo;
        });
      }
      const permissions: Permissions = requestedPerms ?? { ...inst.permissions };
      for (const [name, level] of Object.entries(permissions)) {
        const granted = inst.permissions[name];
        if (!granted || (level === "write" && granted !== "write")) {
          throw new HttpError(422, "The permissions requested are not granted to this installation.");
        }
      }
      const now = Date.now();
      const token: FakeToken = {
        token: randomToken("ghs_"),
        installationId: inst.id,
        createdAt: now,
        expiresAt: now + this.tokenTtlMs,
        repositories: scoped ? scoped.map((r) => r.name) : null,
        permissions,
        revoked: false,
      };
      this.tokens.push(token);
      const body: Json = {
        token: token.token,
        // GitHub sends whole seconds; round down so a short test TTL is never extended.
        expires_at: iso(Math.floor(token.expiresAt / 1000) * 1000),
        permissions,
        repository_selection: scoped ? "selected" : inst.repositorySelection,
      };
      if (scoped) body.repositories = scoped.map((r) => this.repositoryBody(r));
      return { status: 201, body };
    });

    this.route("GET", "/installation/repositories", "installation", (ctx) => {
      const t = ctx.token!;
      const visible = [...this.repos.values()].filter(
        (r) => r.installationId === t.installationId && (!t.repositories || t.repositories.includes(r.name)),
      );
      const { page, headers } = this.paginate(ctx, visible);
      const inst = this.installations.get(t.installationId)!;
      return {
        status: 200,
        headers,
        body: { total_count: visible.length, repository_selection: inst.repositorySelection, repositories: page.map((r) => this.repositoryBody(r)) },
      };
    });

    this.route("GET", "/repos/{owner}/{repo}", "installation", (ctx) => {
      const repo = this.visibleRepo(ctx);
      const ex = this.validator.example("GET", "/repos/{owner}/{repo}", 200) as Json;
      const { source: _s, parent: _p, template_repository: _t, ...rest } = ex;
      return {
        status: 200,
        body: {
          ...rest,
          ...this.repositoryBody(repo),
          // GitHub's example omits the required (nullable) `language`.
          language: null,
          network_count: 0,
          subscribers_count: 0,
        },
      };
    });

    this.route("GET", "/repos/{owner}/{repo}/branches", "installation", async (ctx) => {
      const repo = this.visibleRepo(ctx);
      const all = (await this.branches(repo)).map((b) => ({
        name: b.name,
        commit: { sha: b.sha, url: `${this.url}/repos/${repo.fullName}/commits/${b.sha}` },
        protected: b.name === repo.defaultBranch,
      }));
      const { page, headers } = this.paginate(ctx, all);
      return { status: 200, body: page, headers };
    });

    this.route("GET", "/repos/{owner}/{repo}/pulls", "installation", async (ctx) => {
      const repo = this.visibleRepo(ctx);
      const state = ctx.query.get("state") ?? "open";
      const head = ctx.query.get("head");
      const base = ctx.query.get("base");
      let list = this.pulls.filter((p) => p.repo === repo.fullName && (state === "all" || p.state === state));
      if (head) {
        const [owner, branch] = head.includes(":") ? head.split(":", 2) : [repo.owner, head];
        list = owner?.toLowerCase() === repo.owner.toLowerCase() ? list.filter((p) => p.head === branch) : [];
      }
      if (base) list = list.filter((p) => p.base === base);
      list = [...list].sort((a, b) => b.number - a.number);
      const { page, headers } = this.paginate(ctx, list);
      return { status: 200, body: await Promise.all(page.map((p) => this.pullBody(p, "simple"))), headers };
    });

    this.route("POST", "/repos/{owner}/{repo}/pulls", "installation", async (ctx) => {
      const repo = this.visibleRepo(ctx);
      this.requirePermission(ctx, "pull_requests", "write");
      const { title, head: rawHead, base, body, draft } = ctx.body as {
        title?: string;
        head?: string;
        base?: string;
        body?: string;
        draft?: boolean;
      };
      if (!title || !rawHead || !base) {
        throw new HttpError(422, "Validation Failed", {
          errors: [{ resource: "PullRequest", code: "missing_field", field: !title ? "title" : !rawHead ? "head" : "base" }],
        });
      }
      const head = rawHead.includes(":") ? rawHead.split(":", 2)[1]! : rawHead;
      const [headSha, baseSha] = await Promise.all([this.resolveRef(repo, head), this.resolveRef(repo, base)]);
      if (!baseSha) throw new HttpError(422, "Validation Failed", { errors: [{ resource: "PullRequest", field: "base", code: "invalid" }] });
      if (!headSha) throw new HttpError(422, "Validation Failed", { errors: [{ resource: "PullRequest", field: "head", code: "invalid" }] });
      if (headSha === baseSha) {
        throw new HttpError(422, "Validation Failed", {
          errors: [{ resource: "PullRequest", code: "custom", message: `No commits between ${base} and ${head}` }],
        });
      }
      // No await between this check and the insert: concurrent creates race like on GitHub.
      if (this.pulls.some((p) => p.repo === repo.fullName && p.state === "open" && p.head === head && p.base === base)) {
        throw new HttpError(422, "Validation Failed", {
          errors: [{ resource: "PullRequest", code: "custom", message: `A pull request already exists for ${repo.owner}:${head}.` }],
        });
      }
      const now = iso(Date.now());
      const pull: FakePull = {
        id: this.nextId++,
        number: this.pulls.filter((p) => p.repo === repo.fullName).length + 1,
        repo: repo.fullName,
        title,
        body: body ?? null,
        head,
        headSha,
        base,
        state: "open",
        draft: draft ?? false,
        mergedAt: null,
        createdAt: now,
        updatedAt: now,
        mergeableComputed: false,
      };
      this.pulls.push(pull);
      this.pullCreates++;
      return {
        status: 201,
        body: await this.pullBody(pull, "full"),
        headers: { location: `${this.url}/repos/${repo.fullName}/pulls/${pull.number}` },
      };
    });

    this.route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "installation", async (ctx) => {
      const repo = this.visibleRepo(ctx);
      const p = this.pulls.find((x) => x.repo === repo.fullName && x.number === Number(ctx.params.pull_number));
      if (!p) throw new HttpError(404, "Not Found");
      const body = await this.pullBody(p, "full");
      p.mergeableComputed = true;
      return { status: 200, body };
    });

    this.route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", "installation", async (ctx) => {
      const repo = this.visibleRepo(ctx);
      const sha = await this.resolveRef(repo, ctx.params.ref ?? "");
      if (!sha) throw new HttpError(422, `No commit found for SHA: ${ctx.params.ref}`);
      let runs = this.checkRuns.filter((r) => r.repo === repo.fullName && r.headSha === sha);
      if ((ctx.query.get("filter") ?? "latest") === "latest") {
        const latest = new Map<string, FakeCheckRun>();
        for (const r of runs) if ((latest.get(r.name)?.id ?? -1) < r.id) latest.set(r.name, r);
        runs = [...latest.values()];
      }
      const ex = (this.validator.example("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", 200) as { check_runs: Json[] }).check_runs[0]!;
      const { page, headers } = this.paginate(ctx, runs);
      return {
        status: 200,
        headers,
        body: {
          total_count: runs.length,
          check_runs: page.map((r) => ({
            ...ex,
            id: r.id,
            node_id: Buffer.from(`CheckRun${r.id}`).toString("base64"),
            head_sha: r.headSha,
            name: r.name,
            status: r.status,
            conclusion: r.status === "completed" ? r.conclusion : null,
            started_at: iso(Date.now()),
            completed_at: r.status === "completed" ? iso(Date.now()) : null,
            url: `${this.url}/repos/${repo.fullName}/check-runs/${r.id}`,
            html_url: `${this.url}/${repo.fullName}/runs/${r.id}`,
            pull_requests: [],
          })),
        },
      };
    });

    this.route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "installation", (ctx) => {
      const repo = this.visibleRepo(ctx);
      const n = Number(ctx.params.pull_number);
      if (!this.pulls.some((x) => x.repo === repo.fullName && x.number === n)) throw new HttpError(404, "Not Found");
      const ex = (this.validator.example("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", 200) as Json[])[0]!;
      const list = this.reviews
        .filter((r) => r.repo === repo.fullName && r.pull === n)
        .map((r) => ({
          ...ex,
          id: r.id,
          node_id: Buffer.from(`Review${r.id}`).toString("base64"),
          user: this.userBody(r.user, 5000 + r.id, "User"),
          state: r.state,
          body: "",
          html_url: `${this.url}/${repo.fullName}/pull/${n}#pullrequestreview-${r.id}`,
          pull_request_url: `${this.url}/repos/${repo.fullName}/pulls/${n}`,
          submitted_at: r.submittedAt,
          author_association: "MEMBER",
        }));
      const { page, headers } = this.paginate(ctx, list);
      return { status: 200, body: page, headers };
    });

    this.route("GET", "/user", "user", (ctx) => {
      const u = ctx.user!;
      const ex = this.validator.example("GET", "/user", 200) as Json;
      return {
        status: 200,
        body: { ...ex, ...this.userBody(u.login, u.id, "User"), name: u.name, email: u.email, user_view_type: "private" },
      };
    });

    this.route("GET", "/user/installations", "user", (ctx) => {
      const u = ctx.user!;
      const all = u.installationIds.map((id) => this.installations.get(id)).filter((i): i is FakeInstallation => !!i);
      const { page, headers } = this.paginate(ctx, all);
      return { status: 200, headers, body: { total_count: all.length, installations: page.map((i) => this.installationBody(i)) } };
    });
  }

  /**
   * GitHub's authorize page (OAuth web flow step 1) for a user who is signed in to GitHub (the
   * `user_session` cookie from createWebSession) and has already authorised the App: it redirects to
   * redirect_uri with a one-time `code` and the caller's `state` unchanged. GitHub shows a 404 page
   * for an unknown client_id and its login page to a signed-out visitor; the fake answers with short
   * text pages instead. GitHub would fall back to the App's registered callback URL when redirect_uri
   * is absent and passes a missing state through; the fake has no registered URL and refuses a
   * missing state, since a sign-in without a CSRF nonce is a client bug a test should catch.
   */
  private oauthAuthorize(url: URL, cookieHeader: string | undefined): Reply {
    const page = (status: number, text: string): Reply => ({
      status,
      headers: { "content-type": "text/plain; charset=utf-8" },
      raw: `fake GitHub: ${text}\n`,
    });
    const q = url.searchParams;
    const oauth = this.options.oauth;
    if (!oauth || q.get("client_id") !== oauth.clientId) return page(404, "Not Found (no application with this client_id)");
    let target: URL;
    try {
      target = new URL(q.get("redirect_uri") ?? "");
    } catch {
      return page(400, "redirect_uri is missing or not an absolute URL");
    }
    if (target.protocol !== "http:" && target.protocol !== "https:") return page(400, "redirect_uri must be an http(s) URL");
    const state = q.get("state");
    if (!state) return page(400, "state is missing");
    const session = cookieHeader
      ?.split(";")
      .map((part) => part.trim().split("="))
      .find(([name]) => name === WEB_SESSION_COOKIE)?.[1];
    const login = session ? this.webSessions.get(session) : undefined;
    if (!login) return page(401, "Sign in to GitHub to continue (no user_session cookie for this browser)");
    target.searchParams.set("code", this.issueOAuthCode(login));
    target.searchParams.set("state", state);
    return { status: 302, headers: { location: target.toString(), "content-type": "text/html; charset=utf-8" }, raw: "" };
  }

  /** GitHub's OAuth web endpoint: errors are HTTP 200 with {error, error_description}. */
  private oauthAccessToken(body: Json): Reply {
    const oauthError = (error: string, description: string): Reply => ({
      status: 200,
      body: { error, error_description: description, error_uri: "https://docs.github.com/apps/troubleshooting-oauth-errors" },
    });
    const oauth = this.options.oauth;
    if (!oauth || body.client_id !== oauth.clientId || body.client_secret !== oauth.clientSecret) {
      return oauthError("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.");
    }
    const code = typeof body.code === "string" ? this.oauthCodes.get(body.code) : undefined;
    if (!code || code.expiresAt <= Date.now()) return oauthError("bad_verification_code", "The code passed is incorrect or expired.");
    this.oauthCodes.delete(body.code as string); // single use, like GitHub
    const token = randomToken("ghu_");
    this.userTokens.set(token, { login: code.login, expiresAt: Date.now() + 8 * 3600_000 });
    return {
      status: 200,
      body: {
        access_token: token,
        expires_in: 28800,
        refresh_token: randomToken("ghr_"),
        refresh_token_expires_in: 15811200,
        token_type: "bearer",
        scope: "",
      },
    };
  }
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1024 * 1024) throw new HttpError(413, "Payload too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseBody(raw: string, contentType: string | undefined): Json {
  if (!raw) return {};
  if (contentType?.includes("application/x-www-form-urlencoded")) return Object.fromEntries(new URLSearchParams(raw));
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    return parsed as Json;
  } catch {
    throw new HttpError(400, "Problems parsing JSON");
  }
}
