// Shared bits of the snapshot scripts: argument parsing, the client from env, error reporting.
import { Daytona, DaytonaError } from "../packages/backend/src/providers/daytona/sdk.ts";

export class UsageError extends Error {}

/** `--name X`, `--name=X` or a bare first argument; `--flag` booleans. */
export function parseArgs(argv: string[]): { name: string; flags: Map<string, string | true> } {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      if (eq > 0) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
      else if (argv[i + 1] !== undefined && !(argv[i + 1] ?? "").startsWith("--")) flags.set(arg.slice(2), argv[++i] ?? "");
      else flags.set(arg.slice(2), true);
    } else positional.push(arg);
  }
  const name = flags.get("name") ?? positional[0];
  if (typeof name !== "string" || !name) throw new UsageError("missing snapshot name (--name kiln-sandbox:<version>)");
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/.test(name)) throw new UsageError(`invalid snapshot name ${JSON.stringify(name)}`);
  return { name, flags };
}

export function numberFlag(flags: Map<string, string | true>, key: string): number | undefined {
  const v = flags.get(key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isFinite(n) || n < 0) throw new UsageError(`--${key} needs a non-negative number`);
  return n;
}

/** The client from DAYTONA_API_KEY / DAYTONA_API_URL / DAYTONA_TARGET (the key is never printed). */
export function clientFromEnv(env: Record<string, string | undefined> = process.env): Daytona {
  const apiKey = env.DAYTONA_API_KEY?.trim();
  if (!apiKey) throw new UsageError("DAYTONA_API_KEY is not set");
  const apiUrl = env.DAYTONA_API_URL?.trim() || "https://app.daytona.io/api";
  const target = env.DAYTONA_TARGET?.trim();
  return new Daytona({ apiKey, apiUrl, ...(target ? { target } : {}) });
}

/** One line for a failure: SDK errors carry the HTTP status. */
export function describeError(error: unknown): string {
  if (error instanceof DaytonaError) {
    const status = error.statusCode ? ` (HTTP ${error.statusCode}${error.statusCode === 401 ? ": check DAYTONA_API_KEY" : ""})` : "";
    return `${error.name}: ${error.message}${status}`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Run `main`, mapping failures to exit codes: 2 usage, 1 anything else. */
export async function runScript(usage: string, main: () => Promise<number>): Promise<void> {
  let code: number;
  try {
    code = await main();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}\n${usage}`);
      code = 2;
    } else {
      console.error(`error: ${describeError(error)}`);
      code = 1;
    }
  }
  process.exit(code);
}
