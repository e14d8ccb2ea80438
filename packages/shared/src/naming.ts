// Pure naming rules shared by backend and UI.

/** A short title from the first meaningful line of a prompt. */
export function deriveTitle(prompt: string, maxLength = 72): string {
  const line =
    prompt
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? "Untitled task";
  return line.length <= maxLength ? line : `${line.slice(0, maxLength - 1).trimEnd()}…`;
}

/** A git-safe slug from free text. */
export function slugify(text: string, maxLength = 40): string {
  const slug = text
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, maxLength)
    .replace(/-+$/g, "");
  return slug || "task";
}

/** The branch a task would get before de-duplication: `kiln/<slug>`. */
export const branchBaseName = (title: string): string => `kiln/${slugify(title)}`;

/** Branch name for a task: `kiln/<slug>`, suffixed (`-2`, `-3`, …) until it is not taken. */
export function deriveBranchName(title: string, taken: (branch: string) => boolean): string {
  const base = branchBaseName(title);
  if (!taken(base)) return base;
  for (let n = 2; n < 10_000; n++) {
    const candidate = `${base}-${n}`;
    if (!taken(candidate)) return candidate;
  }
  throw new Error(`no free branch name for ${base}`);
}

/** Deterministic repo id from a normalised remote URL (stable across re-registration). */
export function normalizeRemoteUrl(remoteUrl: string): string {
  let url = remoteUrl.trim();
  if (url.startsWith("/")) url = `file://${url}`;
  return url.replace(/\/+$/, "").replace(/\.git$/, "");
}

export function repoNameFromUrl(remoteUrl: string): string {
  const normalized = normalizeRemoteUrl(remoteUrl);
  const last = normalized.split(/[/:]/).filter(Boolean).at(-1);
  return last ?? normalized;
}

/** The provider-side sandbox name for a task: deterministic so a replayed step finds the same sandbox. */
export function sandboxNameForTask(taskId: string): string {
  return `task-${taskId}`;
}
