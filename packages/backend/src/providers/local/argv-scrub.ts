// sandbox-agent 0.4.2 takes its token only as `--token=<value>` (no env var, no file, no @argfile), and
// a process's argv is readable by every process on the host (`ps`, /proc/<pid>/cmdline). Once the
// daemon has parsed its arguments (it answered a health check with the token), Kiln overwrites the
// token's bytes in the daemon's argv area through /proc/<pid>/mem. The backend is the daemon's parent,
// so it may write there (same rule as ptrace). The token stays visible only from exec to first health.
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, writeSync } from "node:fs";
import { KilnError } from "@kiln/shared";

/** arg_start/arg_end: fields 48 and 49 of /proc/<pid>/stat (after "pid (comm) state"). */
function argvRange(pid: number): { start: number; end: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = Number(fields[48 - 3]);
  const end = Number(fields[49 - 3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end <= start) {
    throw new KilnError("internal", `cannot locate the argv of process ${pid}`);
  }
  return { start, end };
}

/** Replace every occurrence of `secret` in the argv of `pid` with "x"s. */
export function scrubArgv(pid: number, secret: string): void {
  let range: { start: number; end: number };
  try {
    range = argvRange(pid);
  } catch (error) {
    if (!existsSync(`/proc/${pid}`)) return; // exited: nothing left to hide
    throw error;
  }
  const { start, end } = range;
  const needle = Buffer.from(secret, "utf8");
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/mem`, "r+");
  } catch (error) {
    throw new KilnError("internal", `cannot hide the daemon token from the process list: ${(error as Error).message}`);
  }
  try {
    const area = Buffer.alloc(end - start);
    readSync(fd, area, 0, area.length, start);
    for (let at = area.indexOf(needle); at >= 0; at = area.indexOf(needle, at + needle.length)) {
      writeSync(fd, Buffer.alloc(needle.length, "x"), 0, needle.length, start + at);
    }
  } finally {
    closeSync(fd);
  }
  if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(secret)) {
    throw new KilnError("internal", `the daemon token is still on the command line of process ${pid}`);
  }
}

/** `root` and all its descendants (bwrap and the daemon inside it). */
export function processTree(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const children = readFileSync(`/proc/${out[i]}/task/${tid}/children`, "utf8").trim();
        for (const child of children.split(/\s+/).filter(Boolean)) out.push(Number(child));
      }
    } catch {
      continue; // exited while we looked
    }
  }
  return out;
}
