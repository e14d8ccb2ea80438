// Typed errors the client can show. The backend throws them; the client rebuilds them from the wire.
import { z } from "zod";

export const ERROR_CODES = [
  "invalid_input", // 400: the request failed validation; nothing was changed
  "not_found", // 404
  "conflict", // 409: e.g. branch already used by another task in the repo
  "not_ready", // 409: e.g. session not ready to receive messages
  "unauthorized", // 401
  "forbidden", // 403
  "timeout", // 504: a deadline passed
  "unavailable", // 503: backend or sandbox unreachable
  "internal", // 500
] as const;
export const ErrorCodeSchema = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

export const HTTP_STATUS_BY_CODE: Record<ErrorCode, number> = {
  invalid_input: 400,
  not_found: 404,
  conflict: 409,
  not_ready: 409,
  unauthorized: 401,
  forbidden: 403,
  timeout: 504,
  unavailable: 503,
  internal: 500,
};

export interface FieldIssue {
  path: string;
  message: string;
}

export class KilnError extends Error {
  override readonly name = "KilnError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
  }
  get status(): number {
    return HTTP_STATUS_BY_CODE[this.code];
  }
  toJSON() {
    return { code: this.code, message: this.message, issues: this.issues };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);
}

/** Parse `input` with `schema`, or throw an `invalid_input` KilnError listing every issue. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what = "input"): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
  const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
  throw new KilnError("invalid_input", `Invalid ${what}: ${summary}`, issues);
}

/** A readable message from anything thrown. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === "string") return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}
