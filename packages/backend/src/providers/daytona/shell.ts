// Building commands for the Daytona toolbox. Its `process/execute` does NOT use a shell: the daemon
// splits the string itself (quote-aware, no escapes) and execs argv directly. So every script is
// shipped base64-encoded inside one single-quoted `sh -c` argument, which that splitter keeps intact.
import { randomBytes } from "node:crypto";

/** Quote for POSIX sh (inside the script, after base64 decoding). */
export function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface WrappedCommand {
  command: string;
  /** Splits the toolbox's merged output back into stdout and stderr. */
  split(output: string): { stdout: string; stderr: string };
}

/**
 * Wrap a shell script for `process/execute`. Daytona merges stderr into stdout, so the script's
 * stderr goes to a temp file that is printed after a random marker; the script runs in a subshell
 * so an `exit` inside it still reaches the marker.
 */
export function wrapScript(script: string): WrappedCommand {
  const b64 = Buffer.from(script, "utf8").toString("base64");
  const marker = `__KILN_STDERR_${randomBytes(8).toString("hex")}__`;
  const command =
    `sh -c 'e=$(mktemp); (eval "$(echo ${b64} | base64 -d)") 2>"$e"; c=$?; ` +
    `printf "\\n%s\\n" ${marker}; cat "$e"; rm -f "$e"; exit $c'`;
  return {
    command,
    split(output: string) {
      const sep = `\n${marker}\n`;
      const at = output.lastIndexOf(sep);
      if (at < 0) return { stdout: output, stderr: "" };
      return { stdout: output.slice(0, at), stderr: output.slice(at + sep.length) };
    },
  };
}
