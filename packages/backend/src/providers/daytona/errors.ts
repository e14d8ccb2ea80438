// Translate @daytonaio/sdk errors into KilnError at the provider boundary, so callers never see
// SDK classes. Order matters: SDK subclasses extend the HTTP classes (FileNotFound → NotFound).
import {
  DaytonaAuthenticationError,
  DaytonaConflictError,
  DaytonaError,
  DaytonaForbiddenError,
  DaytonaInvalidArgumentError,
  DaytonaNotFoundError,
  DaytonaTimeoutError,
} from "@daytonaio/sdk";
import { type ErrorCode, KilnError, errorMessage } from "@kiln/shared";

export function daytonaErrorCode(error: unknown): ErrorCode {
  if (error instanceof KilnError) return error.code;
  // DaytonaTimeoutError also matches DaytonaConnectionTimeoutError (client-side deadline) by design.
  if (error instanceof DaytonaTimeoutError) return "timeout";
  if (error instanceof DaytonaAuthenticationError) return "unauthorized";
  if (error instanceof DaytonaForbiddenError) return "forbidden";
  if (error instanceof DaytonaNotFoundError) return "not_found";
  if (error instanceof DaytonaConflictError) return "conflict";
  if (error instanceof DaytonaInvalidArgumentError) return "invalid_input";
  if (error instanceof DaytonaError) {
    // Some paths build a bare DaytonaError but still carry the status.
    if (error.statusCode === 401) return "unauthorized";
    if (error.statusCode === 404) return "not_found";
    if (error.statusCode === 408 || error.statusCode === 504) return "timeout";
  }
  return "unavailable";
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  unauthorized: " (check DAYTONA_API_KEY)",
  forbidden: " (the API key lacks a permission)",
};

/** Wrap any error thrown by the SDK into a KilnError with the operation in the message. */
export function toKilnError(operation: string, error: unknown): KilnError {
  if (error instanceof KilnError) return error;
  const code = daytonaErrorCode(error);
  return new KilnError(code, `Daytona ${operation} failed: ${errorMessage(error)}${HINTS[code] ?? ""}`);
}

/** Run an SDK call and rethrow its failure as a KilnError. */
export async function daytonaCall<T>(operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toKilnError(operation, error);
  }
}

export function isNotFound(error: unknown): boolean {
  return daytonaErrorCode(error) === "not_found";
}
