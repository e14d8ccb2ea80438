// Changed files and unified diffs of a task's checkout against the point it branched from the base
// branch: committed and uncommitted work, plus untracked files. Runs through provider.exec so it works
// the same in a local worktree and in a remote sandbox.
import { type ChangedFile, KilnError, sandboxPathProblem } from "@kiln/shared";
import type { SandboxHandle, SandboxProvider } from "../providers/types.ts";

/** Kiln's own files in the work dir (operation log, run-code scratch) are not the task's changes. */
const EXCLUDE_KILN = `-- . ':(exclude).kiln'`;

export const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

async function baseRef(provider: SandboxProvider, handle: SandboxHandle, baseBranch: string): Promise<string> {
  const result = await provider.exec(
    handle,
    `git merge-base HEAD ${shellQuote(`origin/${baseBranch}`)} 2>/dev/null || git rev-parse HEAD`,
    { timeoutMs: 30_000 },
  );
  const ref = result.stdout.trim().split("\n")[0];
  if (result.exitCode !== 0 || !ref) throw new KilnError("internal", `cannot find the base of the branch: ${result.stderr.trim()}`);
  return ref;
}

const STATUS_TO_CHANGE: Record<string, ChangedFile["change"]> = {
  A: "added",
  M: "modified",
  D: "deleted",
  R: "renamed",
  T: "modified",
  C: "added",
};

export async function listChanges(provider: SandboxProvider, handle: SandboxHandle, baseBranch: string): Promise<ChangedFile[]> {
  const base = await baseRef(provider, handle, baseBranch);
  const q = shellQuote(base);
  // One round trip: name-status, numstat and untracked files, separated by markers.
  const result = await provider.exec(
    handle,
    `git diff --name-status -M ${q} ${EXCLUDE_KILN} && echo '@@NUMSTAT' && git diff --numstat -M ${q} ${EXCLUDE_KILN} && echo '@@UNTRACKED' && git ls-files --others --exclude-standard ${EXCLUDE_KILN}`,
    { timeoutMs: 60_000 },
  );
  if (result.exitCode !== 0) throw new KilnError("internal", `git diff failed: ${result.stderr.trim()}`);
  const [statusPart = "", rest = ""] = result.stdout.split("@@NUMSTAT\n");
  const [numstatPart = "", untrackedPart = ""] = rest.split("@@UNTRACKED\n");

  const counts = new Map<string, { additions: number; deletions: number }>();
  for (const line of numstatPart.split("\n").filter(Boolean)) {
    const [add = "0", del = "0", ...pathParts] = line.split("\t");
    const file = pathParts.at(-1) ?? "";
    counts.set(file, { additions: Number(add) || 0, deletions: Number(del) || 0 });
  }
  const files: ChangedFile[] = [];
  for (const line of statusPart.split("\n").filter(Boolean)) {
    const [code = "M", ...paths] = line.split("\t");
    const file = paths.at(-1) ?? "";
    const change = STATUS_TO_CHANGE[code[0] ?? "M"] ?? "modified";
    files.push({ path: file, change, ...(counts.get(file) ?? { additions: 0, deletions: 0 }) });
  }
  for (const file of untrackedPart.split("\n").filter(Boolean)) {
    const lines = await provider.exec(handle, `wc -l < ${shellQuote(file)}`, { timeoutMs: 10_000 });
    files.push({ path: file, change: "untracked", additions: Number(lines.stdout.trim()) || 0, deletions: 0 });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

export async function fileDiff(
  provider: SandboxProvider,
  handle: SandboxHandle,
  baseBranch: string,
  file: string,
): Promise<string> {
  const problem = sandboxPathProblem(file);
  if (problem) throw new KilnError("invalid_input", problem);
  const base = await baseRef(provider, handle, baseBranch);
  const q = shellQuote(file);
  const tracked = await provider.exec(handle, `git diff -M ${shellQuote(base)} -- ${q}`, { timeoutMs: 60_000 });
  if (tracked.exitCode !== 0) throw new KilnError("invalid_input", `cannot diff ${file}: ${tracked.stderr.trim().slice(0, 500)}`);
  if (tracked.stdout.trim()) return tracked.stdout;
  // Not changed in git: an unchanged file (empty diff), a directory, an untracked file, or nothing.
  const untracked = await provider.exec(
    handle,
    `if [ -d ${q} ] && [ ! -L ${q} ]; then exit 20; fi; if [ ! -e ${q} ] && [ ! -L ${q} ]; then exit 21; fi; ` +
      `if git ls-files --error-unmatch -- ${q} >/dev/null 2>&1; then exit 0; fi; git diff --no-index -- /dev/null ${q}`,
    { timeoutMs: 60_000 },
  );
  if (untracked.exitCode === 20) throw new KilnError("invalid_input", `${file} is a directory`);
  if (untracked.exitCode === 21) throw new KilnError("not_found", `no such file: ${file}`);
  // git diff --no-index: exit 1 means "differences found".
  if (untracked.exitCode > 1) throw new KilnError("invalid_input", `cannot diff ${file}: ${untracked.stderr.trim().slice(0, 500)}`);
  return untracked.stdout;
}
