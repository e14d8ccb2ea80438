// File operations confined to a local sandbox's work dir. The path is checked by shape first
// (sandboxPathProblem: relative, no `..`, no NUL, not `.git`), then on disk: the real path of the
// target (read) or of its parent (write) must lie inside the real work dir, and the final component is
// opened with O_NOFOLLOW so a symlink planted by the agent cannot redirect the operation.
import { constants } from "node:fs";
import { lstat, mkdir, open, realpath } from "node:fs/promises";
import path from "node:path";
import { KilnError, sandboxPathProblem } from "@kiln/shared";

function checkShape(file: string): string {
  const problem = sandboxPathProblem(file);
  if (problem) throw new KilnError("invalid_input", `${problem}: ${JSON.stringify(file.slice(0, 200))}`);
  return path.normalize(file);
}

const code = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** `real` is inside `root` and not in its `.git`. */
function assertInside(root: string, real: string, file: string): void {
  const relative = path.relative(root, real);
  if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new KilnError("invalid_input", `path ${file} is outside the sandbox`);
  }
  if (relative.split(path.sep)[0]?.toLowerCase() === ".git") {
    throw new KilnError("invalid_input", `path ${file} is inside .git`);
  }
}

export async function readConfined(workdir: string, file: string): Promise<string> {
  const relative = checkShape(file);
  const root = await realpath(workdir);
  let real: string;
  try {
    real = await realpath(path.join(root, relative));
  } catch (error) {
    if (code(error) === "ENOENT" || code(error) === "ENOTDIR") throw new KilnError("not_found", `no such file: ${file}`);
    throw new KilnError("invalid_input", `cannot resolve ${file}: ${code(error) ?? (error as Error).message}`);
  }
  assertInside(root, real, file);
  let handle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if (code(error) === "ENOENT") throw new KilnError("not_found", `no such file: ${file}`);
    throw new KilnError("invalid_input", `cannot read ${file}: ${code(error) ?? (error as Error).message}`);
  }
  try {
    if (!(await handle.stat()).isFile()) throw new KilnError("invalid_input", `${file} is not a regular file`);
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

/** Create the missing parents of `relative`, refusing any existing component that leaves the work dir. */
async function confinedParent(root: string, relative: string, file: string): Promise<string> {
  const parts = path.dirname(relative).split(path.sep).filter((p) => p && p !== ".");
  let current = root;
  for (const part of parts) {
    const next = path.join(current, part);
    let stats;
    try {
      stats = await lstat(next);
    } catch (error) {
      if (code(error) !== "ENOENT") throw new KilnError("invalid_input", `cannot write ${file}: ${code(error)}`);
      await mkdir(next);
      current = next;
      continue;
    }
    if (stats.isSymbolicLink()) {
      const real = await realpath(next).catch((error: unknown) => {
        throw new KilnError("invalid_input", `cannot write ${file}: ${code(error) ?? "broken symlink"}`);
      });
      assertInside(root, real, file);
      current = real;
    } else if (stats.isDirectory()) {
      current = next;
    } else {
      throw new KilnError("invalid_input", `cannot write ${file}: ${part} is not a directory`);
    }
  }
  return current;
}

export async function writeConfined(workdir: string, file: string, content: string): Promise<void> {
  const relative = checkShape(file);
  const root = await realpath(workdir);
  const parent = await confinedParent(root, relative, file);
  const target = path.join(parent, path.basename(relative));
  assertInside(root, target, file);
  let handle;
  try {
    handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  } catch (error) {
    const reason = code(error) === "ELOOP" ? "is a symlink" : code(error) === "EISDIR" ? "is a directory" : code(error);
    throw new KilnError("invalid_input", `cannot write ${file}: ${reason ?? (error as Error).message}`);
  }
  try {
    if (!(await handle.stat()).isFile()) throw new KilnError("invalid_input", `${file} is not a regular file`);
    await handle.truncate(0);
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
}
