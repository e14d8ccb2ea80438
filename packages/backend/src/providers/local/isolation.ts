// Bubblewrap isolation of local sandboxes (Kiln issue 10). Every sandbox process — the daemon, its
// agents, exec/runCode — runs in its own mount and PID namespace that shows only: the system
// read-only (/usr, /bin, /lib*, a minimal /etc), the toolchain and the scripted agent read-only, the
// sandbox's work dir and home writable, and the git objects/refs/admin dir its worktree needs.
// Other sandboxes, the data dir, the engine and the backend's files are not mounted at all.
// Networking stays shared: the daemon listens on 127.0.0.1 for the backend.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import { KilnError } from "@kiln/shared";

export type IsolationMode = "bubblewrap" | "none";

export function bubblewrapWorks(): boolean {
  const result = spawnSync("bwrap", ["--ro-bind", "/", "/", "--unshare-pid", "--proc", "/proc", "true"], {
    stdio: "ignore",
    timeout: 10_000,
  });
  return result.status === 0;
}

/**
 * KILN_SANDBOX_ISOLATION: unset = bubblewrap when it works, else none. With sign-in on (several users),
 * running without isolation is refused: one user's task could read another's sandbox.
 */
export function resolveIsolation(setting: IsolationMode | undefined, signInEnabled: boolean): IsolationMode {
  const available = bubblewrapWorks();
  if (setting === "bubblewrap" && !available) {
    throw new KilnError("unavailable", "KILN_SANDBOX_ISOLATION=bubblewrap but bwrap is missing or cannot create namespaces");
  }
  const mode = setting ?? (available ? "bubblewrap" : "none");
  if (mode === "none" && signInEnabled) {
    throw new KilnError(
      "invalid_input",
      "sign-in is on but local sandboxes would run without isolation: install bubblewrap (apt-get install bubblewrap) or use single-user mode",
    );
  }
  return mode;
}

const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
const ETC_FILES = [
  "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/ld.so.cache",
  "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/ssl", "/etc/ca-certificates", "/etc/alternatives",
  "/etc/gitconfig", "/etc/mime.types",
];

export interface SandboxMounts {
  workdir: string;
  home: string;
  /** XDG_DATA_HOME with the agent launchers (read-only: a task must not rewrite another's agent). */
  agentHome: string;
  /** Executables and trees to expose read-only (daemon binary, node/bun, scripted agent). */
  readOnly: string[];
}

/** The top directory of a path outside the system dirs, e.g. /work/main/.tools for its node. */
function toolRoot(file: string): string | null {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return null;
  }
  if (SYSTEM_DIRS.some((dir) => real === dir || real.startsWith(`${dir}/`))) return null;
  return path.dirname(real);
}

/** Git dirs a worktree needs: the cache read-only, its objects, refs and this worktree's admin dir writable. */
function gitMounts(workdir: string): string[] {
  const dotGit = path.join(workdir, ".git");
  if (!existsSync(dotGit)) return [];
  const match = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, "utf8"));
  if (!match?.[1]) return [];
  const admin = path.resolve(workdir, match[1].trim());
  const common = path.resolve(admin, readFileSync(path.join(admin, "commondir"), "utf8").trim());
  // A commit writes new objects, the branch ref and its reflog in the common dir.
  const writable = ["objects", "refs", "logs"].map((dir) => path.join(common, dir));
  for (const dir of writable) mkdirSync(dir, { recursive: true });
  return ["--ro-bind", common, common, ...writable.flatMap((dir) => ["--bind", dir, dir]), "--bind", admin, admin];
}

/** bwrap arguments (up to and including `--`) for one sandbox. */
export function bubblewrapArgs(mounts: SandboxMounts, cwd: string): string[] {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) args.push("--ro-bind-try", dir, dir);
  for (const file of ETC_FILES) args.push("--ro-bind-try", file, file);
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--unshare-pid", "--unshare-ipc", "--unshare-uts");
  const roots = new Set<string>();
  for (const item of mounts.readOnly) {
    const root = toolRoot(item);
    if (root) roots.add(root);
  }
  for (const root of roots) args.push("--ro-bind", root, root);
  args.push("--ro-bind", mounts.agentHome, mounts.agentHome);
  args.push("--bind", mounts.home, mounts.home);
  args.push("--bind", mounts.workdir, mounts.workdir);
  args.push(...gitMounts(mounts.workdir));
  args.push("--chdir", cwd, "--");
  return args;
}
