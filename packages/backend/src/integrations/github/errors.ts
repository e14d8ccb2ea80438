// Octokit RequestError → KilnError. Messages carry GitHub's own explanation but never the request:
// Octokit redacts the Authorization header, not the body, and an OAuth exchange body holds the
// client secret and code. So the original error is never chained as `cause`.
import { type ErrorCode, KilnError } from "@kiln/shared";

interface RequestErrorLike {
  name: string;
  status: number;
  message: string;
  response?: { status: number; headers: Record<string, string | number | undefined>; data: unknown };
  cause?: unknown;
}

function isRequestErrorLike(error: unknown): error is RequestErrorLike {
  // Duck-typed: several @octokit/request-error copies can coexist in node_modules.
  return (
    error instanceof Error &&
    typeof (error as { status?: unknown }).status === "number" &&
    (error.name === "HttpError" || error.name === "AbortError")
  );
}

function errorName(value: unknown): string | undefined {
  return value instanceof Error || (typeof value === "object" && value !== null && "name" in value)
    ? String((value as { name: unknown }).name)
    : undefined;
}

/** GitHub's `message` plus any 422 `errors[]` details, trimmed. */
function gitHubDetail(data: unknown): string | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const d = data as { message?: unknown; errors?: unknown; error?: unknown; error_description?: unknown };
  const parts: string[] = [];
  if (typeof d.message === "string") parts.push(d.message);
  // OAuth endpoints answer {error, error_description}; keep the machine code for diagnosis.
  if (typeof d.error_description === "string" && typeof d.error === "string") parts.push(`${d.error_description} (${d.error})`);
  else if (typeof d.error_description === "string") parts.push(d.error_description);
  else if (typeof d.error === "string") parts.push(d.error);
  if (Array.isArray(d.errors)) {
    for (const e of d.errors.slice(0, 5)) {
      if (typeof e === "string") parts.push(e);
      else if (typeof e === "object" && e !== null) {
        const item = e as { message?: unknown; field?: unknown; code?: unknown };
        if (typeof item.message === "string") parts.push(item.message);
        else parts.push([item.field, item.code].filter((x) => typeof x === "string").join(" "));
      }
    }
  }
  const text = parts.filter(Boolean).join("; ");
  return text ? text.slice(0, 500) : undefined;
}

function codeForStatus(status: number, headers: Record<string, string | number | undefined>): ErrorCode {
  if (status === 401) return "unauthorized";
  if (status === 403) {
    // A primary/secondary rate limit is a transient condition, not a permission problem.
    if (String(headers["x-ratelimit-remaining"] ?? "") === "0" || headers["retry-after"] !== undefined) {
      return "unavailable";
    }
    return "forbidden";
  }
  if (status === 404 || status === 410) return "not_found";
  if (status === 409) return "conflict";
  if (status === 400 || status === 422) return "invalid_input";
  if (status === 429 || status >= 500) return "unavailable";
  return "internal";
}

/** Map anything Octokit throws to a KilnError; `action` reads like "create a pull request for o/r". */
export function toKilnError(error: unknown, action: string): KilnError {
  if (error instanceof KilnError) return error;
  if (isRequestErrorLike(error)) {
    const response = error.response;
    if (!response) {
      // No HTTP response: deadline passed, or GitHub could not be reached.
      const causeName = errorName(error.cause) ?? error.name;
      if (causeName === "TimeoutError" || /timeout|timed out/i.test(error.message)) {
        return new KilnError("timeout", `GitHub did not answer in time while trying to ${action}`);
      }
      if (error.name === "AbortError") {
        return new KilnError("timeout", `GitHub request was aborted while trying to ${action}`);
      }
      return new KilnError("unavailable", `GitHub is unreachable while trying to ${action}: ${error.message}`);
    }
    const detail = gitHubDetail(response.data) ?? error.message;
    const code = codeForStatus(error.status, response.headers);
    const hint =
      error.status === 401
        ? " (check GITHUB_APP_ID and the private key, or the token has expired or been revoked)"
        : error.status === 404
          ? " (not found, or the GitHub App installation cannot see it)"
          : "";
    return new KilnError(code, `GitHub refused to ${action}: ${error.status} ${detail}${hint}`);
  }
  const name = errorName(error);
  if (name === "TimeoutError") {
    return new KilnError("timeout", `GitHub did not answer in time while trying to ${action}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new KilnError("internal", `Unexpected error while trying to ${action}: ${message}`);
}
