// Build the provider from loadDaytonaConfig() output: wires the GitHub Actions dispatcher from the
// config when the create mode needs it. The waiter is passed in because the webhook route shares it.
import { KilnError } from "@kiln/shared";
import type { ActionsCallbackWaiter } from "../../integrations/github-actions/callbacks.ts";
import { GitHubWorkflowDispatcher } from "../../integrations/github-actions/dispatch.ts";
import type { DaytonaProviderConfig } from "./config.ts";
import { DaytonaProvider, type DaytonaProviderOptions } from "./provider.ts";

export interface DaytonaProviderDeps {
  /** Shared with `POST /v1/webhooks/actions` (handleActionsCallback). Required for actions/hybrid. */
  actionsWaiter?: ActionsCallbackWaiter;
  gitCredentials?: DaytonaProviderOptions["gitCredentials"];
  log?: DaytonaProviderOptions["log"];
}

export function createDaytonaProvider(config: DaytonaProviderConfig, deps: DaytonaProviderDeps = {}): DaytonaProvider {
  const options: DaytonaProviderOptions = { ...config };
  if (deps.gitCredentials) options.gitCredentials = deps.gitCredentials;
  if (deps.log) options.log = deps.log;
  if (config.createMode !== "api") {
    const actions = config.actions;
    if (!actions || !deps.actionsWaiter) {
      throw new KilnError("invalid_input", `DAYTONA_CREATE_MODE=${config.createMode} needs the KILN_ACTIONS_* settings and a callback waiter`);
    }
    options.actionsWaiter = deps.actionsWaiter;
    options.actionsCallbackUrl = actions.callbackUrl;
    options.actionsTimeoutMs = actions.timeoutMs;
    options.actionsDispatcher = new GitHubWorkflowDispatcher({
      token: actions.githubToken,
      owner: actions.owner,
      repo: actions.repo,
      workflow: actions.workflow,
      ref: actions.ref,
      apiUrl: actions.githubApiUrl,
    });
  }
  return new DaytonaProvider(options);
}
