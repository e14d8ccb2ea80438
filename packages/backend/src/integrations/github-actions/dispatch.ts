// Dispatch daytona/github-actions/create-sandbox.yml through GitHub's REST API
// (`POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`). Plain fetch: one call,
// no Octokit needed. The token is only ever sent in the Authorization header.
import { KilnError, errorMessage } from "@kiln/shared";

export interface ActionsDispatchInput {
  /** Correlates the workflow's callback with the waiting provider step. */
  requestId: string;
  sandboxName: string;
  snapshot: string;
  /** Kiln's `POST /v1/webhooks/actions` URL, reachable from GitHub's runners. */
  callbackUrl: string;
  labels: Record<string, string>;
  /** 0 disables Daytona auto-stop (the provider keeps live tasks running; see provider.ts). */
  autoStopMinutes: number;
  target?: string;
}

/** Injected into DaytonaProvider so tests can "run the workflow" on loopback. */
export interface ActionsDispatcher {
  dispatch(input: ActionsDispatchInput): Promise<void>;
}

export interface GitHubDispatcherOptions {
  token: string;
  owner: string;
  repo: string;
  /** Workflow file name (`create-sandbox.yml`) or numeric id. */
  workflow: string;
  /** Branch or tag holding the workflow file. */
  ref: string;
  apiUrl?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** The workflow_dispatch inputs; all strings (GitHub's rule). Keep in sync with the workflow file. */
export function workflowInputs(input: ActionsDispatchInput): Record<string, string> {
  const inputs: Record<string, string> = {
    request_id: input.requestId,
    sandbox_name: input.sandboxName,
    snapshot: input.snapshot,
    callback_url: input.callbackUrl,
    labels: JSON.stringify(input.labels),
    auto_stop_minutes: String(input.autoStopMinutes),
  };
  if (input.target) inputs.target = input.target;
  return inputs;
}

export class GitHubWorkflowDispatcher implements ActionsDispatcher {
  private readonly apiUrl: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: GitHubDispatcherOptions) {
    this.apiUrl = (options.apiUrl ?? "https://api.github.com").replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? fetch;
  }

  async dispatch(input: ActionsDispatchInput): Promise<void> {
    const { owner, repo, workflow, ref } = this.options;
    const url = `${this.apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/actions/workflows/${encodeURIComponent(workflow)}/dispatches`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: "POST",
        headers: {
          accept: "application/vnd.github+json",
          authorization: `Bearer ${this.options.token}`,
          "content-type": "application/json",
          "user-agent": "kiln",
          "x-github-api-version": "2022-11-28",
        },
        body: JSON.stringify({ ref, inputs: workflowInputs(input) }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
      });
    } catch (error) {
      const timedOut = error instanceof Error && error.name === "TimeoutError";
      throw new KilnError(timedOut ? "timeout" : "unavailable", `GitHub workflow dispatch failed: ${errorMessage(error)}`);
    }
    // 204 historically; 200 when GitHub returns run details.
    if (response.status === 204 || response.status === 200) return;
    const detail = await readGitHubMessage(response);
    const what = `GitHub workflow dispatch of ${owner}/${repo}/${workflow}@${ref} failed (${response.status}): ${detail}`;
    if (response.status === 401) throw new KilnError("unauthorized", `${what} (check KILN_ACTIONS_GITHUB_TOKEN)`);
    if (response.status === 403) throw new KilnError("forbidden", `${what} (the token needs actions:write)`);
    if (response.status === 404) throw new KilnError("not_found", `${what} (repo or workflow not visible to the token)`);
    if (response.status === 422) throw new KilnError("invalid_input", what);
    throw new KilnError("unavailable", what);
  }
}

async function readGitHubMessage(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const json = JSON.parse(text) as { message?: unknown };
    if (typeof json.message === "string") return json.message;
  } catch {
    // Not JSON (proxy error page): fall through to the raw text.
  }
  return text.slice(0, 500) || response.statusText;
}
