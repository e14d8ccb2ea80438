// Pure display rules: transcript folding, diff parsing, routes and badges.
import type { TranscriptEvent } from "@kiln/shared";
import { describe, expect, it } from "vitest";
import { parseUnifiedDiff } from "../src/ChangesPanel.tsx";
import { badgeFor, composerHint } from "../src/format.ts";
import { parseRoute } from "../src/hooks.ts";
import { toItems } from "../src/transcript-items.ts";

let index = 0;
const ev = (kind: TranscriptEvent["kind"], text: string | null, data: Record<string, unknown> | null = null): TranscriptEvent => ({
  sessionId: "s1",
  eventIndex: index++,
  kind,
  createdAt: 1000 + index,
  text,
  data,
});

describe("toItems", () => {
  it("merges message chunks, tool updates, plan updates and permission replies", () => {
    index = 0;
    const items = toItems([
      ev("user_message", "do it"),
      ev("agent_thought", "Reading "),
      ev("agent_thought", "the instructions"),
      ev("plan", null, { entries: [{ content: "write a", status: "pending" }] }),
      ev("tool_call", "Write a", { toolCallId: "t1", title: "Write a", kind: "edit", status: "in_progress" }),
      ev("tool_call_update", null, { toolCallId: "t1", status: "completed" }),
      ev("permission_request", "Run it", { permissionId: "p1", options: [] }),
      ev("permission_reply", "Allowed", { permissionId: "p1", reply: "once" }),
      ev("plan", null, { entries: [{ content: "write a", status: "completed" }] }),
      ev("agent_message", "You said: "),
      ev("agent_message", "do it"),
      ev("turn_end", null, { stopReason: "end_turn" }),
      ev("other", null, { sessionUpdate: "usage_update" }),
    ]);
    expect(items.map((i) => i.type)).toEqual(["user", "thought", "plan", "tool", "permission", "agent", "turn_end"]);
    expect(items[1]).toMatchObject({ text: "Reading the instructions" });
    expect(items[2]).toMatchObject({ entries: [{ content: "write a", status: "completed" }] });
    expect(items[3]).toMatchObject({ title: "Write a", status: "completed", kind: "edit" });
    expect(items[4]).toMatchObject({ permissionId: "p1", reply: "once" });
    expect(items[5]).toMatchObject({ text: "You said: do it" });
  });

  it("gives an empty plan no item", () => {
    index = 0;
    const items = toItems([ev("user_message", "hi"), ev("agent_thought", "Reading"), ev("plan", null, { entries: [] }), ev("agent_message", "You said: hi")]);
    expect(items.map((i) => i.type)).toEqual(["user", "thought", "agent"]);
  });

  it("orders by eventIndex and keeps an unanswered permission open", () => {
    const items = toItems([
      { sessionId: "s", eventIndex: 2, kind: "permission_request", createdAt: 2, text: "Q", data: { permissionId: "p" } },
      { sessionId: "s", eventIndex: 1, kind: "user_message", createdAt: 1, text: "hi", data: null },
    ]);
    expect(items.map((i) => i.type)).toEqual(["user", "permission"]);
    expect(items[1]).toMatchObject({ reply: null, title: "Q" });
  });
});

describe("parseUnifiedDiff", () => {
  it("numbers old and new lines and classifies them", () => {
    const lines = parseUnifiedDiff(
      ["diff --git a/x b/x", "--- a/x", "+++ b/x", "@@ -3,2 +3,3 @@", " same", "-old", "+new", "+more", ""].join("\n"),
    );
    expect(lines.map((l) => [l.kind, l.oldNo, l.newNo])).toEqual([
      ["meta", null, null],
      ["meta", null, null],
      ["meta", null, null],
      ["hunk", null, null],
      ["ctx", 3, 3],
      ["del", 4, null],
      ["add", null, 4],
      ["add", null, 5],
    ]);
  });
});

describe("routes and badges", () => {
  it("parses hash routes", () => {
    expect(parseRoute("")).toEqual({ name: "home" });
    expect(parseRoute("#/")).toEqual({ name: "home" });
    expect(parseRoute("#/new?repo=r1")).toEqual({ name: "new", repoId: "r1" });
    expect(parseRoute("#/tasks/t1-abc")).toEqual({ name: "task", taskId: "t1-abc" });
    expect(parseRoute("#/nope")).toEqual({ name: "not-found", path: "/nope" });
  });

  it("maps every task status to a badge and explains a disabled composer", () => {
    expect(badgeFor("running")).toEqual({ kind: "working", label: "Working" });
    expect(badgeFor("queued").kind).toBe("provisioning");
    expect(badgeFor("needs_input").kind).toBe("needs_input");
    expect(composerHint("running", "running")).toContain("working");
    expect(composerHint("ready", "archived")).toContain("archived");
  });
});
