// GitHub App driver: the only place that talks REST to GitHub. Everything above it (github-state actor,
// routes) sees plain Kiln shapes and KilnErrors, never Octokit types.
import { BranchNameSchema, KilnError, type PullRequestInfo, PullRequestInfoSchema, parseInput } from "@kiln/shared";
import { App } from "@octokit/app";
import { Octokit } from "@octokit/rest";
import { z } from "zod";
import type { GitHubAppConfig } from "./config.ts";
import { toKilnError } from "./errors.ts";

export const GITHUB_API_VERSION = "2022-11-28";
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Hand out no token that would expire during a clone or push. */
const DEFAULT_MIN_TOKEN_LIFETIME_MS = 10 * 60_000;
/** REST calls refresh the installation token when it has less than this left. */
const REST_TOKEN_MARGIN_MS = 60_000;

export type PullRequestState = PullRequestInfo["state"];
export type CheckStatus = PullRequestInfo["checks"];
export type ReviewState = PullRequestInfo["review"];

/** A repository as seen through one App installation. */
export interface GitHubRepoTarget {
  installationId: number;
  owner: string;
  repo: string;
}

export interface GitHubAccount {
  id: number;
  login: string;
  /** "Organization" | "User" | "Enterprise" */
  type: string;
}

export interface GitHubInstallation {
  id: number;
  account: GitHubAccount | null;
  repositorySelection: "all" | "selected";
  suspended: boolean;
}

export interface GitHubRepository {
  id: number;
  owner: string;
  name: string;
  fullName: string;
  defaultBranch: string;
  private: boolean;
  archived: boolean;
  cloneUrl: string;
  htmlUrl: string;
}

export interface GitHubBranch {
  name: string;
  sha: string;
  protected: boolean;
}

/** A short-lived installation token. Secret: never log it or put it in a message. */
export interface InstallationToken {
  token: string;
  /** ISO-8601, from GitHub. */
  expiresAt: string;
}

export interface GitHubPullRequest {
  number: number;
  /** html_url, the page a person opens. */
  url: string;
  title: string;
  state: PullRequestState;
  draft: boolean;
  merged: boolean;
  headRef: string;
  headSha: string;
  baseRef: string;
  /** null until GitHub has computed it (it does so lazily after create/push). */
  mergeable: boolean | null;
}

export interface CreatePullRequestInput {
  head: string;
  base: string;
  title: string;
  body?: string;
  draft?: boolean;
}

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  email: string | null;
  avatarUrl: string;
}

export interface GitHubUserSession {
  user: GitHubUser;
  /** User-to-server token (ghu_…). Secret. expiresAt is null when the App has token expiry off. */
  token: { value: string; expiresAt: string | null; refreshToken: string | null; refreshTokenExpiresAt: string | null };
  /** Installations of this App the user can access. */
  installations: GitHubInstallation[];
  /** Organisations among those installations' accounts. */
  organizations: GitHubAccount[];
}

/** What webhooks.ts needs: `App` itself and every GitHubAppDriver satisfy it. */
export interface WebhookVerifier {
  readonly webhooks: { verify(payload: string, signature: string): Promise<boolean> };
}

export interface GitHubAppDriver extends WebhookVerifier {
  readonly appId: number;
  readonly webUrl: string;
  /** GET /app: proves the App id and key are right. */
  getApp(): Promise<{ id: number; slug: string; name: string; htmlUrl: string }>;
  /** Where a person installs the App (html_url/installations/new?state=…). */
  installUrl(state?: string): Promise<string>;
  listInstallations(): Promise<GitHubInstallation[]>;
  /** The installation that can see owner/repo, or null. */
  findRepoInstallation(owner: string, repo: string): Promise<GitHubInstallation | null>;
  listInstallationRepos(installationId: number): Promise<GitHubRepository[]>;
  getRepo(target: GitHubRepoTarget): Promise<GitHubRepository>;
  listBranches(target: GitHubRepoTarget): Promise<GitHubBranch[]>;
  /**
   * Token scoped to this one repo (default permission contents:write) for git clone/push. Cached
   * while it has enough life left; pass forceRefresh after git got a 401 with it (revoked token).
   */
  createRepoToken(
    target: GitHubRepoTarget,
    options?: { permissions?: Record<string, "read" | "write">; forceRefresh?: boolean },
  ): Promise<InstallationToken>;
  findOpenPullRequest(target: GitHubRepoTarget, head: string): Promise<GitHubPullRequest | null>;
  /** Idempotent: returns the open PR for `head` if there is one (created=false). */
  createPullRequest(
    target: GitHubRepoTarget,
    input: CreatePullRequestInput,
  ): Promise<{ pullRequest: GitHubPullRequest; created: boolean }>;
  getPullRequest(target: GitHubRepoTarget, number: number): Promise<GitHubPullRequest>;
  getCheckStatus(target: GitHubRepoTarget, ref: string): Promise<CheckStatus>;
  getReviewState(target: GitHubRepoTarget, number: number): Promise<ReviewState>;
  /** PR + checks on its head + reviews, as the shared PullRequestInfo contract. */
  getPullRequestInfo(target: GitHubRepoTarget, number: number): Promise<PullRequestInfo>;
  /** OAuth web flow step 1; `state` is the caller's CSRF nonce. */
  oauthAuthorizeUrl(options: { state: string; redirectUrl?: string }): string;
  /** OAuth web flow step 2: code → user token, user, installations. */
  exchangeOAuthCode(options: { code: string; redirectUrl?: string }): Promise<GitHubUserSession>;
}

// ---------------------------------------------------------------------------------------------
// Input validation: names go into URL paths, so reject anything GitHub would not accept anyway.

const OwnerSchema = z
  .string()
  .min(1, "owner is required")
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "not a valid GitHub owner");
const RepoNameSchema = z
  .string()
  .min(1, "repo is required")
  .max(100)
  .regex(/^[A-Za-z0-9_.-]+$/, "not a valid GitHub repository name")
  .refine((r) => r !== "." && r !== "..", "not a valid GitHub repository name");
const InstallationIdSchema = z.number().int().positive("installationId must be a positive integer");
const TargetSchema = z.object({ installationId: InstallationIdSchema, owner: OwnerSchema, repo: RepoNameSchema });
const PullNumberSchema = z.number().int().positive("pull request number must be a positive integer");
const RefSchema = z.string().min(1, "ref is required").max(255);
const CreatePullRequestSchema = z.object({
  head: BranchNameSchema,
  base: BranchNameSchema,
  title: z.string().trim().min(1, "title is required").max(256),
  body: z.string().max(65_536).optional(),
  draft: z.boolean().optional(),
});

// ---------------------------------------------------------------------------------------------
// Mapping REST bodies to Kiln shapes.

interface RestAccount {
  id: number;
  login?: string;
  slug?: string;
  type?: string;
}
interface RestInstallation {
  id: number;
  account: RestAccount | null;
  repository_selection: "all" | "selected";
  suspended_at?: string | null;
}
interface RestRepository {
  id: number;
  name: string;
  full_name: string;
  owner: { login: string };
  default_branch?: string;
  private: boolean;
  archived?: boolean;
  clone_url?: string;
  html_url: string;
}
interface RestPull {
  number: number;
  html_url: string;
  title: string;
  state: string;
  draft?: boolean;
  merged?: boolean;
  merged_at: string | null;
  mergeable?: boolean | null;
  head: { ref: string; sha: string };
  base: { ref: string };
}

function mapAccount(a: RestAccount | null | undefined): GitHubAccount | null {
  if (!a) return null;
  // Enterprise accounts have slug/name instead of login/type.
  return { id: a.id, login: a.login ?? a.slug ?? String(a.id), type: a.type ?? (a.slug ? "Enterprise" : "User") };
}

function mapInstallation(i: RestInstallation): GitHubInstallation {
  return {
    id: i.id,
    account: mapAccount(i.account),
    repositorySelection: i.repository_selection,
    suspended: i.suspended_at != null,
  };
}

function mapRepository(r: RestRepository): GitHubRepository {
  return {
    id: r.id,
    owner: r.owner.login,
    name: r.name,
    fullName: r.full_name,
    defaultBranch: r.default_branch ?? "main",
    private: r.private,
    archived: r.archived ?? false,
    cloneUrl: r.clone_url ?? `${r.html_url}.git`,
    htmlUrl: r.html_url,
  };
}

export function pullRequestState(p: Pick<RestPull, "state" | "draft" | "merged" | "merged_at">): PullRequestState {
  if (p.merged === true || p.merged_at) return "merged";
  if (p.state === "closed") return "closed";
  return p.draft ? "draft" : "open";
}

function mapPull(p: RestPull): GitHubPullRequest {
  return {
    number: p.number,
    url: p.html_url,
    title: p.title,
    state: pullRequestState(p),
    draft: p.draft ?? false,
    merged: p.merged === true || p.merged_at != null,
    headRef: p.head.ref,
    headSha: p.head.sha,
    baseRef: p.base.ref,
    mergeable: p.mergeable ?? null,
  };
}

const FAILED_CONCLUSIONS = new Set(["failure", "timed_out", "cancelled", "action_required", "startup_failure", "stale"]);

/** Check runs → one status: any failure wins, then anything unfinished, then success. */
export function summariseCheckRuns(runs: Array<{ status: string; conclusion: string | null }>): CheckStatus {
  if (runs.length === 0) return "none";
  if (runs.some((r) => r.status === "completed" && r.conclusion !== null && FAILED_CONCLUSIONS.has(r.conclusion))) {
    return "failure";
  }
  if (runs.some((r) => r.status !== "completed")) return "pending";
  return "success";
}

/**
 * Reviews → one state, like GitHub's review decision (which is GraphQL-only): each reviewer's latest
 * APPROVED/CHANGES_REQUESTED/DISMISSED counts; a pending change request beats approvals.
 */
export function summariseReviews(
  reviews: Array<{ user: { login: string } | null; state: string }>,
): ReviewState {
  const latest = new Map<string, string>();
  let commented = false;
  // GitHub lists reviews oldest first; PENDING (unsubmitted) ones are ignored below.
  for (const r of reviews) {
    const state = r.state.toUpperCase();
    if (state === "COMMENTED") commented = true;
    if (state === "APPROVED" || state === "CHANGES_REQUESTED" || state === "DISMISSED") {
      latest.set(r.user?.login ?? "(ghost)", state);
    }
  }
  const states = [...latest.values()];
  if (states.includes("CHANGES_REQUESTED")) return "changes_requested";
  if (states.includes("APPROVED")) return "approved";
  return commented ? "commented" : "none";
}

// ---------------------------------------------------------------------------------------------
// Octokit wiring.

/** fetch with a per-request deadline and the pinned API version; used by every Octokit request,
 * including the token and OAuth requests that @octokit/auth-app sends outside the hook chain. */
function deadlineFetch(timeoutMs: number): typeof fetch {
  const wrapped = (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    const headers = new Headers(init?.headers);
    // A top-level `headers` default is silently ignored by @octokit/core; set it here instead.
    if (!headers.has("x-github-api-version")) headers.set("x-github-api-version", GITHUB_API_VERSION);
    return fetch(input, { ...init, headers, signal });
  };
  return wrapped as typeof fetch;
}

export function createKilnOctokit(baseUrl: string, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS) {
  return Octokit.defaults({ baseUrl, userAgent: "kiln", request: { fetch: deadlineFetch(timeoutMs) } });
}
type KilnOctokitClass = ReturnType<typeof createKilnOctokit>;
type KilnOctokit = InstanceType<KilnOctokitClass>;

interface TokenAuthentication {
  token: string;
  expiresAt: string;
}
function asTokenAuth(value: unknown): TokenAuthentication {
  const v = value as Partial<TokenAuthentication> | null;
  if (!v || typeof v.token !== "string" || typeof v.expiresAt !== "string") {
    throw new KilnError("internal", "GitHub App auth returned no installation token");
  }
  return { token: v.token, expiresAt: v.expiresAt };
}

function httpStatus(error: unknown): number | undefined {
  const s = (error as { status?: unknown } | null)?.status;
  return typeof s === "number" ? s : undefined;
}

export interface OctokitGitHubAppOptions {
  /** Per HTTP request deadline. */
  requestTimeoutMs?: number;
  /** createRepoToken mints a new token when the cached one has less than this left. */
  minTokenLifetimeMs?: number;
  /** Octokit's own warnings (e.g. 401 retries). Never receives tokens. */
  log?: { debug: (m: string) => void; info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void };
}

export class OctokitGitHubApp implements GitHubAppDriver {
  readonly appId: number;
  readonly webUrl: string;
  private readonly Octokit: KilnOctokitClass;
  private readonly app: App<{ Octokit: KilnOctokitClass }>;
  private readonly hasOAuth: boolean;
  private readonly minTokenLifetimeMs: number;
  private readonly clients = new Map<number, Promise<KilnOctokit>>();

  constructor(config: GitHubAppConfig, options: OctokitGitHubAppOptions = {}) {
    this.appId = config.appId;
    this.webUrl = config.webUrl;
    this.minTokenLifetimeMs = options.minTokenLifetimeMs ?? DEFAULT_MIN_TOKEN_LIFETIME_MS;
    this.Octokit = createKilnOctokit(config.apiUrl, options.requestTimeoutMs);
    this.hasOAuth = config.oauth !== null;
    this.app = new App({
      appId: config.appId,
      privateKey: config.privateKey,
      webhooks: { secret: config.webhookSecret },
      // @octokit/app needs oauth credentials to build; without them the OAuth methods refuse below.
      oauth: config.oauth ?? { clientId: "unset", clientSecret: "unset" },
      Octokit: this.Octokit,
      ...(options.log ? { log: options.log } : {}),
    });
  }

  get webhooks(): WebhookVerifier["webhooks"] {
    return this.app.webhooks;
  }

  // --- app (JWT) routes ---------------------------------------------------------------------

  async getApp() {
    try {
      const { data } = await this.app.octokit.rest.apps.getAuthenticated();
      if (!data) throw new KilnError("internal", "GitHub returned no App for GET /app");
      return { id: data.id, slug: data.slug ?? String(data.id), name: data.name, htmlUrl: data.html_url };
    } catch (error) {
      throw toKilnError(error, "read the GitHub App (GET /app)");
    }
  }

  async installUrl(state?: string): Promise<string> {
    try {
      return await this.app.getInstallationUrl(state === undefined ? {} : { state });
    } catch (error) {
      throw toKilnError(error, "build the App installation URL");
    }
  }

  async listInstallations(): Promise<GitHubInstallation[]> {
    try {
      const items = await this.app.octokit.paginate(this.app.octokit.rest.apps.listInstallations, { per_page: 100 });
      return items.map((i) => mapInstallation(i as RestInstallation));
    } catch (error) {
      throw toKilnError(error, "list App installations");
    }
  }

  async findRepoInstallation(owner: string, repo: string): Promise<GitHubInstallation | null> {
    const t = parseInput(TargetSchema.omit({ installationId: true }), { owner, repo }, "repository");
    try {
      const { data } = await this.app.octokit.rest.apps.getRepoInstallation({ owner: t.owner, repo: t.repo });
      return mapInstallation(data as RestInstallation);
    } catch (error) {
      if (httpStatus(error) === 404) return null;
      throw toKilnError(error, `find the App installation for ${t.owner}/${t.repo}`);
    }
  }

  // --- installation routes ------------------------------------------------------------------

  private client(installationId: number): Promise<KilnOctokit> {
    let client = this.clients.get(installationId);
    if (!client) {
      client = this.app.getInstallationOctokit(installationId);
      this.clients.set(installationId, client);
      // A failed factory call must not poison the cache.
      client.then(undefined, () => this.clients.delete(installationId));
    }
    return client;
  }

  /**
   * Run `fn` with an installation client. @octokit/auth-app caches tokens for 59 minutes whatever
   * their real expiry, and never refreshes a token GitHub has revoked, so: refresh a token that is
   * about to expire before the call, and on a 401 refresh once and retry.
   */
  private async withInstallation<T>(
    installationId: number,
    action: string,
    fn: (octokit: KilnOctokit) => Promise<T>,
  ): Promise<T> {
    try {
      const octokit = await this.client(installationId);
      const current = asTokenAuth(await octokit.auth({ type: "installation" }));
      if (Date.parse(current.expiresAt) - Date.now() < REST_TOKEN_MARGIN_MS) {
        await octokit.auth({ type: "installation", refresh: true });
      }
      try {
        return await fn(octokit);
      } catch (error) {
        if (httpStatus(error) !== 401) throw error;
        await octokit.auth({ type: "installation", refresh: true });
        return await fn(octokit);
      }
    } catch (error) {
      throw toKilnError(error, action);
    }
  }

  async listInstallationRepos(installationId: number): Promise<GitHubRepository[]> {
    const id = parseInput(InstallationIdSchema, installationId, "installationId");
    return this.withInstallation(id, `list repositories of installation ${id}`, async (o) => {
      const repos = await o.paginate(o.rest.apps.listReposAccessibleToInstallation, { per_page: 100 });
      return repos.map((r) => mapRepository(r as RestRepository));
    });
  }

  async getRepo(target: GitHubRepoTarget): Promise<GitHubRepository> {
    const t = parseInput(TargetSchema, target, "repository");
    return this.withInstallation(t.installationId, `read ${t.owner}/${t.repo}`, async (o) => {
      const { data } = await o.rest.repos.get({ owner: t.owner, repo: t.repo });
      return mapRepository(data as RestRepository);
    });
  }

  async listBranches(target: GitHubRepoTarget): Promise<GitHubBranch[]> {
    const t = parseInput(TargetSchema, target, "repository");
    return this.withInstallation(t.installationId, `list branches of ${t.owner}/${t.repo}`, async (o) => {
      const branches = await o.paginate(o.rest.repos.listBranches, { owner: t.owner, repo: t.repo, per_page: 100 });
      return branches.map((b) => ({ name: b.name, sha: b.commit.sha, protected: b.protected }));
    });
  }

  async createRepoToken(
    target: GitHubRepoTarget,
    options: { permissions?: Record<string, "read" | "write">; forceRefresh?: boolean } = {},
  ): Promise<InstallationToken> {
    const t = parseInput(TargetSchema, target, "repository");
    const permissions = options.permissions ?? { contents: "write" };
    try {
      const octokit = await this.client(t.installationId);
      const request = { type: "installation" as const, repositoryNames: [t.repo], permissions };
      let auth = asTokenAuth(await octokit.auth({ ...request, refresh: options.forceRefresh === true }));
      if (Date.parse(auth.expiresAt) - Date.now() < this.minTokenLifetimeMs) {
        auth = asTokenAuth(await octokit.auth({ ...request, refresh: true }));
      }
      return { token: auth.token, expiresAt: auth.expiresAt };
    } catch (error) {
      throw toKilnError(error, `mint an installation token for ${t.owner}/${t.repo}`);
    }
  }

  async findOpenPullRequest(target: GitHubRepoTarget, head: string): Promise<GitHubPullRequest | null> {
    const t = parseInput(TargetSchema, target, "repository");
    const branch = parseInput(BranchNameSchema, head, "head branch");
    return this.withInstallation(t.installationId, `list pull requests of ${t.owner}/${t.repo}`, (o) =>
      this.openPullFor(o, t, branch),
    );
  }

  private async openPullFor(o: KilnOctokit, t: GitHubRepoTarget, head: string): Promise<GitHubPullRequest | null> {
    // `head` filter is "owner:branch"; same-repo branches are owned by the repo owner.
    const { data } = await o.rest.pulls.list({
      owner: t.owner,
      repo: t.repo,
      state: "open",
      head: `${t.owner}:${head}`,
      per_page: 10,
    });
    const match = (data as RestPull[]).find((p) => p.head.ref === head);
    return match ? mapPull(match) : null;
  }

  async createPullRequest(
    target: GitHubRepoTarget,
    input: CreatePullRequestInput,
  ): Promise<{ pullRequest: GitHubPullRequest; created: boolean }> {
    const t = parseInput(TargetSchema, target, "repository");
    const pr = parseInput(CreatePullRequestSchema, input, "pull request");
    if (pr.head === pr.base) throw new KilnError("invalid_input", "head and base branch must differ");
    return this.withInstallation(t.installationId, `create a pull request for ${t.owner}/${t.repo}:${pr.head}`, async (o) => {
      const existing = await this.openPullFor(o, t, pr.head);
      if (existing) return { pullRequest: existing, created: false };
      try {
        const { data } = await o.rest.pulls.create({
          owner: t.owner,
          repo: t.repo,
          head: pr.head,
          base: pr.base,
          title: pr.title,
          ...(pr.body !== undefined ? { body: pr.body } : {}),
          ...(pr.draft !== undefined ? { draft: pr.draft } : {}),
        });
        return { pullRequest: mapPull(data as RestPull), created: true };
      } catch (error) {
        // Lost a race with a concurrent create: GitHub answers 422 "A pull request already exists".
        if (httpStatus(error) === 422) {
          const raced = await this.openPullFor(o, t, pr.head);
          if (raced) return { pullRequest: raced, created: false };
        }
        throw error;
      }
    });
  }

  async getPullRequest(target: GitHubRepoTarget, number: number): Promise<GitHubPullRequest> {
    const t = parseInput(TargetSchema, target, "repository");
    const n = parseInput(PullNumberSchema, number, "pull request number");
    return this.withInstallation(t.installationId, `read pull request ${t.owner}/${t.repo}#${n}`, async (o) => {
      const { data } = await o.rest.pulls.get({ owner: t.owner, repo: t.repo, pull_number: n });
      return mapPull(data as RestPull);
    });
  }

  async getCheckStatus(target: GitHubRepoTarget, ref: string): Promise<CheckStatus> {
    const t = parseInput(TargetSchema, target, "repository");
    const r = parseInput(RefSchema, ref, "ref");
    return this.withInstallation(t.installationId, `read check runs of ${t.owner}/${t.repo}@${r}`, async (o) => {
      const runs = await o.paginate(o.rest.checks.listForRef, {
        owner: t.owner,
        repo: t.repo,
        ref: r,
        filter: "latest",
        per_page: 100,
      });
      return summariseCheckRuns(runs);
    });
  }

  async getReviewState(target: GitHubRepoTarget, number: number): Promise<ReviewState> {
    const t = parseInput(TargetSchema, target, "repository");
    const n = parseInput(PullNumberSchema, number, "pull request number");
    return this.withInstallation(t.installationId, `read reviews of ${t.owner}/${t.repo}#${n}`, async (o) => {
      const reviews = await o.paginate(o.rest.pulls.listReviews, {
        owner: t.owner,
        repo: t.repo,
        pull_number: n,
        per_page: 100,
      });
      return summariseReviews(reviews);
    });
  }

  async getPullRequestInfo(target: GitHubRepoTarget, number: number): Promise<PullRequestInfo> {
    const pr = await this.getPullRequest(target, number);
    const [checks, review] = await Promise.all([
      this.getCheckStatus(target, pr.headSha),
      this.getReviewState(target, pr.number),
    ]);
    return PullRequestInfoSchema.parse({ number: pr.number, url: pr.url, state: pr.state, checks, review });
  }

  // --- OAuth (user sign-in) -----------------------------------------------------------------

  private requireOAuth(): void {
    if (!this.hasOAuth) {
      throw new KilnError("unavailable", "GitHub sign-in is not configured (set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET)");
    }
  }

  oauthAuthorizeUrl(options: { state: string; redirectUrl?: string }): string {
    this.requireOAuth();
    const state = parseInput(z.string().min(8, "state must be a random nonce").max(512), options.state, "state");
    return this.app.oauth.getWebFlowAuthorizationUrl({
      state,
      ...(options.redirectUrl !== undefined ? { redirectUrl: options.redirectUrl } : {}),
    }).url;
  }

  async exchangeOAuthCode(options: { code: string; redirectUrl?: string }): Promise<GitHubUserSession> {
    this.requireOAuth();
    const code = parseInput(z.string().min(1, "code is required").max(512), options.code, "code");
    let authentication: {
      token: string;
      expiresAt?: string;
      refreshToken?: string;
      refreshTokenExpiresAt?: string;
    };
    try {
      ({ authentication } = await this.app.oauth.createToken({
        code,
        ...(options.redirectUrl !== undefined ? { redirectUrl: options.redirectUrl } : {}),
      }));
    } catch (error) {
      // GitHub reports a bad/used code as HTTP 200 {error}; oauth-methods turns it into a 400.
      const mapped = toKilnError(error, "exchange the GitHub sign-in code");
      if (mapped.code === "invalid_input") throw new KilnError("unauthorized", mapped.message);
      throw mapped;
    }
    const user = new this.Octokit({ auth: authentication.token });
    try {
      const [{ data: me }, installations] = await Promise.all([
        user.rest.users.getAuthenticated(),
        user.paginate(user.rest.apps.listInstallationsForAuthenticatedUser, { per_page: 100 }),
      ]);
      const mapped = installations.map((i) => mapInstallation(i as RestInstallation));
      return {
        user: { id: me.id, login: me.login, name: me.name ?? null, email: me.email ?? null, avatarUrl: me.avatar_url },
        token: {
          value: authentication.token,
          expiresAt: authentication.expiresAt ?? null,
          refreshToken: authentication.refreshToken ?? null,
          refreshTokenExpiresAt: authentication.refreshTokenExpiresAt ?? null,
        },
        installations: mapped,
        organizations: mapped
          .map((i) => i.account)
          .filter((a): a is GitHubAccount => a !== null && a.type === "Organization"),
      };
    } catch (error) {
      throw toKilnError(error, "read the signed-in GitHub user");
    }
  }
}
