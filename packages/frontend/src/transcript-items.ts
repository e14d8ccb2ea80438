// Folds a session's normalised transcript events into display items (pure; unit-tested).
import type { TranscriptEvent } from "@kiln/shared";

export interface PlanEntry {
  content: string;
  status: string;
}
export type Item =
  | { type: "user"; key: string; text: string; at: number }
  | { type: "agent"; key: string; text: string }
  | { type: "thought"; key: string; text: string }
  | { type: "tool"; key: string; toolCallId: string; title: string; status: string; kind: string | null }
  | { type: "plan"; key: string; entries: PlanEntry[] }
  | { type: "permission"; key: string; permissionId: string; title: string; reply: string | null }
  | { type: "error"; key: string; text: string }
  | { type: "turn_end"; key: string; reason: string | null }
  | { type: "other"; key: string; text: string };

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

/** Folds normalised transcript events into display items: merges message chunks, tool updates, plan updates, replies. */
export function toItems(events: TranscriptEvent[]): Item[] {
  const items: Item[] = [];
  const tools = new Map<string, Extract<Item, { type: "tool" }>>();
  const permissions = new Map<string, Extract<Item, { type: "permission" }>>();
  let plan: Extract<Item, { type: "plan" }> | null = null;
  for (const e of [...events].sort((a, b) => a.eventIndex - b.eventIndex)) {
    const key = `${e.sessionId}-${e.eventIndex}`;
    const data = e.data ?? {};
    const last = items.at(-1);
    switch (e.kind) {
      case "user_message":
        plan = null;
        items.push({ type: "user", key, text: e.text ?? "", at: e.createdAt });
        break;
      case "agent_message":
        if (last?.type === "agent") last.text += e.text ?? "";
        else items.push({ type: "agent", key, text: e.text ?? "" });
        break;
      case "agent_thought":
        if (last?.type === "thought") last.text += e.text ?? "";
        else items.push({ type: "thought", key, text: e.text ?? "" });
        break;
      case "tool_call":
      case "tool_call_update": {
        const id = str(data.toolCallId) ?? key;
        const existing = tools.get(id);
        const title = str(data.title) ?? e.text;
        const status = str(data.status);
        if (existing) {
          if (title) existing.title = title;
          if (status) existing.status = status;
        } else {
          const item = { type: "tool" as const, key, toolCallId: id, title: title ?? "Tool call", status: status ?? "pending", kind: str(data.kind) };
          tools.set(id, item);
          items.push(item);
        }
        break;
      }
      case "plan": {
        const entries = Array.isArray(data.entries)
          ? data.entries.map((x: unknown) => {
              const o = (x ?? {}) as Record<string, unknown>;
              return { content: str(o.content) ?? "", status: str(o.status) ?? "pending" };
            })
          : [];
        // An agent may announce an empty plan (nothing to do): that gets no box.
        if (plan) plan.entries = entries;
        else if (entries.length > 0) {
          plan = { type: "plan", key, entries };
          items.push(plan);
        }
        break;
      }
      case "permission_request": {
        const permissionId = str(data.permissionId) ?? key;
        const item = { type: "permission" as const, key, permissionId, title: str(data.title) ?? e.text ?? "The agent asks for permission", reply: null };
        permissions.set(permissionId, item);
        items.push(item);
        break;
      }
      case "permission_reply": {
        const request = permissions.get(str(data.permissionId) ?? "");
        if (request) request.reply = str(data.reply) ?? "answered";
        break;
      }
      case "error":
        items.push({ type: "error", key, text: e.text ?? "The agent reported an error." });
        break;
      case "turn_end":
        plan = null;
        items.push({ type: "turn_end", key, reason: str(data.stopReason) });
        break;
      case "other":
        if (e.text) items.push({ type: "other", key, text: e.text });
        break;
    }
  }
  return items;
}
