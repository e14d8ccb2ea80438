import { describe, expect, test } from "vitest";
import {
  AddRepoInputSchema,
  BranchNameSchema,
  CreateTaskInputSchema,
  KilnError,
  type TaskDetail,
  applyTaskEvent,
  classifySeq,
  currentStepOf,
  deriveBranchName,
  deriveTaskStatus,
  deriveTitle,
  parseInput,
  slugify,
} from "../src/index.ts";

describe("naming", () => {
  test("titles come from the first non-empty line, shortened", () => {
    expect(deriveTitle("\n\n  Fix the login bug  \nmore")).toBe("Fix the login bug");
    expect(deriveTitle("x".repeat(100))).toHaveLength(72);
    expect(deriveTitle("   ")).toBe("Untitled task");
  });
  test("branch names are slugs under kiln/, suffixed until free", () => {
    expect(slugify("Fix: the Login bug!")).toBe("fix-the-login-bug");
    const taken = new Set(["kiln/fix-it", "kiln/fix-it-2"]);
    expect(deriveBranchName("Fix it", (b) => taken.has(b))).toBe("kiln/fix-it-3");
    expect(BranchNameSchema.safeParse(deriveBranchName("Ünïcode ✓ title", () => false)).success).toBe(true);
  });
  test("branch validation rejects what git rejects", () => {
    for (const bad of ["a..b", "-x", "x/", "/x", "a//b", "x.lock", "has space", "x."]) {
      expect(BranchNameSchema.safeParse(bad).success, bad).toBe(false);
    }
    expect(BranchNameSchema.safeParse("feature/x-1.2").success).toBe(true);
  });
});

describe("status derivation", () => {
  const steps = (...states: string[]) => states.map((state) => ({ state }) as { state: "pending" });
  test("provisioning, error and session-driven states", () => {
    expect(deriveTaskStatus("queued", steps("pending", "pending", "pending", "pending"), [])).toBe("queued");
    expect(deriveTaskStatus("queued", steps("done", "running", "pending", "pending"), [])).toBe("provisioning");
    expect(deriveTaskStatus("provisioning", steps("done", "failed", "pending", "pending"), [])).toBe("error");
    const done = steps("done", "done", "done", "done");
    expect(deriveTaskStatus("running", done, [{ status: "running" }])).toBe("running");
    expect(deriveTaskStatus("running", done, [{ status: "ready" }, { status: "needs_input" }])).toBe("needs_input");
    expect(deriveTaskStatus("running", done, [{ status: "ready" }])).toBe("idle");
    expect(deriveTaskStatus("running", done, [{ status: "error" }])).toBe("error");
    expect(deriveTaskStatus("archived", done, [{ status: "running" }])).toBe("archived");
  });
  test("current step is the failed, else running, else next pending one", () => {
    const s = (step: string, state: string) => ({ step, state });
    expect(currentStepOf([s("a", "done"), s("b", "failed"), s("c", "pending")])).toBe("b");
    expect(currentStepOf([s("a", "done"), s("b", "running")])).toBe("b");
    expect(currentStepOf([s("a", "pending"), s("b", "pending")])).toBeNull();
  });
});

describe("realtime folding", () => {
  const detail: TaskDetail = {
    seq: 3,
    task: {} as TaskDetail["task"],
    steps: [],
    sandbox: null,
    sessions: [],
    transcript: [],
    history: [],
    changes: [],
  };
  test("seq classification: apply next, drop duplicates, detect gaps", () => {
    expect(classifySeq(3, 4)).toBe("apply");
    expect(classifySeq(3, 3)).toBe("duplicate");
    expect(classifySeq(3, 1)).toBe("duplicate");
    expect(classifySeq(3, 6)).toBe("gap");
  });
  test("events upsert by identity, so replays are idempotent", () => {
    const event = { sessionId: "s1", eventIndex: 1, kind: "agent_message" as const, createdAt: 1, text: "hi", data: null };
    const once = applyTaskEvent(detail, { seq: 4, type: "transcript", event });
    const twice = applyTaskEvent(once, { seq: 5, type: "transcript", event: { ...event, text: "hi!" } });
    expect(twice.transcript).toHaveLength(1);
    expect(twice.transcript[0]?.text).toBe("hi!");
    expect(twice.seq).toBe(5);
    const session = { sessionId: "s1", title: "S", agent: "mock" as const, status: "ready" as const, error: null, createdAt: 1, updatedAt: 1 };
    const withSession = applyTaskEvent(detail, { seq: 4, type: "session", session });
    expect(applyTaskEvent(withSession, { seq: 5, type: "session-removed", sessionId: "s1" }).sessions).toEqual([]);
  });
});

describe("input validation", () => {
  test("every issue is reported with its path", () => {
    try {
      parseInput(CreateTaskInputSchema, { repoId: "", prompt: "", agent: "nope" }, "task");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(KilnError);
      const e = error as KilnError;
      expect(e.code).toBe("invalid_input");
      expect([...new Set(e.issues.map((i) => i.path))].sort()).toEqual(["agent", "prompt", "repoId"]);
      expect(e.status).toBe(400);
    }
  });
  test("remote URLs: https, ssh, file and absolute paths", () => {
    for (const ok of ["https://github.com/a/b.git", "git@github.com:a/b.git", "ssh://git@host/a/b", "file:///srv/repo", "/home/me/repo"]) {
      expect(AddRepoInputSchema.safeParse({ remoteUrl: ok }).success, ok).toBe(true);
    }
    for (const bad of ["", "relative/path", "ftp://x/y", "http://"]) {
      expect(AddRepoInputSchema.safeParse({ remoteUrl: bad }).success, bad).toBe(false);
    }
  });
});
