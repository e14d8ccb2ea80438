#!/usr/bin/env node
// Kiln's entry point for `npm run <command>` on a fresh machine (only Node ≥ 20 and npm needed):
// installs the pinned toolchain (Bun, Node 22) into .tools/, installs dependencies, then runs the command.
// Plain Node ESM with no dependencies, because nothing is installed when it first runs.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TOOLS = path.join(ROOT, ".tools");
const TOOLS_BIN = path.join(TOOLS, "node_modules", ".bin");
const TOOL_VERSIONS = { bun: "1.4.5", node: "22.23.3" };

const env = {
  ...process.env,
  PATH: `${TOOLS_BIN}${path.delimiter}${process.env.PATH ?? ""}`,
  TURBO_TELEMETRY_DISABLED: "1",
  DO_NOT_TRACK: "1",
};

function log(message) {
  console.log(`\x1b[36m[kiln]\x1b[0m ${message}`);
}

function die(message) {
  console.error(`\x1b[31m[kiln] ${message}\x1b[0m`);
  process.exit(1);
}

function runSync(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: "inherit", env, cwd: ROOT, ...options });
  if (result.error) die(`could not run ${command}: ${result.error.message}`);
  if (result.status !== 0) die(`${command} ${args.join(" ")} failed (exit ${result.status})`);
}

function toolVersion(name) {
  const bin = path.join(TOOLS_BIN, name);
  if (!existsSync(bin)) return null;
  const result = spawnSync(bin, ["--version"], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim().replace(/^v/, "") : null;
}

/** Bun and Node 22 come from the npm registry into .tools/ (no global install, no downloads elsewhere). */
function ensureTools() {
  if (toolVersion("bun") === TOOL_VERSIONS.bun && toolVersion("node") === TOOL_VERSIONS.node) return;
  log(`installing bun ${TOOL_VERSIONS.bun} and node ${TOOL_VERSIONS.node} into .tools/ (from npm)`);
  mkdirSync(TOOLS, { recursive: true });
  // Its own package.json, so npm does not walk up into the bun workspace (it cannot read `workspace:`).
  writeFileSync(path.join(TOOLS, "package.json"), JSON.stringify({ name: "kiln-tools", private: true }, null, 2));
  runSync("npm", [
    "install",
    "--no-save",
    "--no-audit",
    "--no-fund",
    "--prefix",
    TOOLS,
    `bun@${TOOL_VERSIONS.bun}`,
    `node@${TOOL_VERSIONS.node}`,
  ]);
  if (toolVersion("bun") !== TOOL_VERSIONS.bun) die("bun did not install correctly into .tools/");
}

/** `bun install` when the lockfile or a package.json changed since the last install. */
function ensureDeps() {
  const marker = path.join(ROOT, "node_modules", ".kiln-installed");
  const inputs = ["bun.lock", "package.json", ...readdirSync(path.join(ROOT, "packages")).map((p) => `packages/${p}/package.json`)]
    .map((f) => path.join(ROOT, f))
    .filter((f) => existsSync(f));
  const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
  if (existsSync(marker) && statSync(marker).mtimeMs >= newest) return;
  log("installing dependencies (bun install)");
  runSync("bun", ["install", "--frozen-lockfile"]);
  writeFileSync(marker, new Date().toISOString());
}

/** `apt-get install` a Debian package (through sudo when not root), after one `apt-get update`. */
function aptInstall(pkg, why) {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const apt = (args, options) => (isRoot ? runSync("apt-get", args, options) : runSync("sudo", ["apt-get", ...args], options));
  log(`installing ${pkg} ${why} (apt-get install ${pkg})`);
  apt(["update", "-qq"]);
  apt(["install", "-y", "-qq", pkg], { env: { ...env, DEBIAN_FRONTEND: "noninteractive" } });
}

/** Browser tests drive Debian's Chromium; install it with apt when missing. */
function ensureChromium() {
  const chromium = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
  if (existsSync(chromium)) return;
  aptInstall("chromium", "for the browser tests");
  if (!existsSync(chromium)) die(`Chromium is still missing at ${chromium}`);
}

/** bubblewrap isolates local sandboxes (KILN_SANDBOX_ISOLATION): `dev` and the tests install it. */
function ensureBubblewrap() {
  const works = () => spawnSync("bwrap", ["--version"], { stdio: "ignore" }).status === 0;
  if (works()) return;
  aptInstall("bubblewrap", "for sandbox isolation");
  if (!works()) die("bubblewrap (bwrap) is still missing");
}

/** Run a long-lived command, forwarding signals; exit with its code. */
function runForeground(command, args, extraEnv = {}) {
  const child = spawn(command, args, { stdio: "inherit", env: { ...env, ...extraEnv }, cwd: ROOT });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

/** Sum the per-package vitest JSON reports into the one closing line CI reads. */
function summarizeTests(reportDir) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  if (existsSync(reportDir)) {
    for (const file of readdirSync(reportDir).filter((f) => f.endsWith(".json"))) {
      const report = JSON.parse(readFileSync(path.join(reportDir, file), "utf8"));
      passed += report.numPassedTests ?? 0;
      failed += (report.numFailedTests ?? 0) + (report.numRuntimeErrorTestSuites ?? 0);
      skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    }
  }
  return { passed, failed, skipped };
}

/** Strict TypeScript for every package, plus the scripts and the Daytona image code outside them. */
function typecheckAll() {
  runSync("bun", ["x", "turbo", "run", "typecheck"]);
  runSync("bun", ["x", "tsc", "--noEmit", "-p", "scripts"]);
  runSync("bun", ["x", "tsc", "--noEmit", "-p", "daytona"]);
}

const COMMANDS = {
  /** The whole product on its embedded defaults: build the workbench, start the backend serving it. */
  dev() {
    // Local sandboxes run isolated by default (KILN_SANDBOX_ISOLATION): install bwrap like the tests do.
    ensureBubblewrap();
    runSync("bun", ["run", "--cwd", "packages/frontend", "build"]);
    log("starting Kiln: open http://127.0.0.1:" + (process.env.KILN_PORT ?? "7741"));
    runForeground("bun", ["packages/backend/src/main.ts"]);
  },
  /** Workbench with hot reload on :5173 (proxying /v1 to a backend started separately). */
  "dev:ui"() {
    runForeground("bun", ["run", "--cwd", "packages/frontend", "dev"]);
  },
  "start:backend"() {
    runForeground("bun", ["packages/backend/src/main.ts"]);
  },
  build() {
    runSync("bun", ["x", "turbo", "run", "build"]);
  },
  typecheck() {
    typecheckAll();
  },
  /** Every test: typecheck, unit, integration (real engine + daemon), contract (loopback fakes), browser. */
  test() {
    ensureChromium();
    ensureBubblewrap();
    const reportDir = path.join(ROOT, "test-artifacts", "vitest");
    rmSync(reportDir, { recursive: true, force: true });
    mkdirSync(reportDir, { recursive: true });
    typecheckAll();
    // One package at a time: integration suites start engines and daemons, and this machine has 2 cores.
    const result = spawnSync("bun", ["x", "turbo", "run", "test", "--concurrency=1", "--continue"], {
      stdio: "inherit",
      env: { ...env, KILN_VITEST_REPORT_DIR: reportDir },
      cwd: ROOT,
    });
    const { passed, failed, skipped } = summarizeTests(reportDir);
    console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
    if (result.status !== 0 || failed > 0) process.exit(1);
    if (passed === 0) die("no tests ran");
  },
  bench(args) {
    runForeground("bun", ["scripts/bench.ts", ...args]);
  },
  /** 200 creates + 50 concurrent agent turns over ~2 minutes on a real backend; exits 1 on any error. */
  soak(args) {
    runForeground("bun", ["scripts/soak.ts", ...args]);
  },
  "live-test"(args) {
    runForeground("bun", ["scripts/live-test-flow.ts", ...args]);
  },
  "engine-cost"(args) {
    runForeground("bun", ["scripts/engine-cost.ts", ...args]);
  },
};

const [command, ...args] = process.argv.slice(2);
if (!command || !(command in COMMANDS)) die(`usage: node scripts/kiln.mjs <${Object.keys(COMMANDS).join("|")}> [args]`);
ensureTools();
ensureDeps();
COMMANDS[command](args);
