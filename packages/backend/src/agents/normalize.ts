// Turns raw ACP JSON-RPC envelopes (as recorded by the sandbox-agent SDK) into Kiln transcript items,
// so clients never need to know ACP.
import type { TranscriptItemKind } from "@kiln/shared";

export interface TranscriptItem {
  kind: TranscriptItemKind;
  text: string | null;
  data: Record<string, unknown> | null;
}

const REPLAY_PREFIX = "Previous session history is replayed below";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const textOf = (content: unknown): string | null => {
  if (isObject(content) && typeof content.text === "string") return content.text;
  if (Array.isArray(content)) {
    const texts = content.map(textOf).filter((t): t is string => t !== null);
    return texts.length ? texts.join("") : null;
  }
  return null;
};

/** The user's own words from a `session/prompt`, without the SDK's history-replay block. */
export function promptText(prompt: unknown): string {
  if (!Array.isArray(prompt)) return "";
  return prompt
    .filter((b): b is Json => isObject(b) && b.type === "text" && typeof b.text === "string")
    .map((b) => b.text as string)
    .filter((t) => !t.startsWith(REPLAY_PREFIX))
    .join("\n");
}

export function normalizeEnvelope(sender: "client" | "agent", payload: unknown): TranscriptItem | null {
  if (!isObject(payload)) return { kind: "other", text: null, data: null };
  const method = typeof payload.method === "string" ? payload.method : null;
  const params = isObject(payload.params) ? payload.params : {};

  if (sender === "client") {
    if (method === "session/prompt") return { kind: "user_message", text: promptText(params.prompt), data: null };
    // session/new, cancel, mode changes: plumbing, not conversation.
    return null;
  }

  if (method === "session/update" && isObject(params.update)) {
    const update = params.update;
    switch (update.sessionUpdate) {
      case "agent_message_chunk":
        return { kind: "agent_message", text: textOf(update.content), data: null };
      case "agent_thought_chunk":
        return { kind: "agent_thought", text: textOf(update.content), data: null };
      case "tool_call":
        return {
          kind: "tool_call",
          text: typeof update.title === "string" ? update.title : null,
          data: {
            toolCallId: update.toolCallId,
            title: update.title,
            kind: update.kind,
            status: update.status,
            locations: update.locations,
          },
        };
      case "tool_call_update":
        return {
          kind: "tool_call_update",
          text: typeof update.title === "string" ? update.title : null,
          data: { toolCallId: update.toolCallId, status: update.status, title: update.title },
        };
      case "plan":
        return { kind: "plan", text: null, data: { entries: Array.isArray(update.entries) ? update.entries : [] } };
      default:
        return { kind: "other", text: null, data: { sessionUpdate: update.sessionUpdate } };
    }
  }
  // The permission request itself is recorded by Kiln with the SDK's permission id (see agent runtime).
  if (method === "session/request_permission") return null;
  if (method === "_adapter/agent_exited") {
    return { kind: "error", text: "The agent process exited", data: { exit: params } };
  }
  if (method) return { kind: "other", text: null, data: { method } };
  if (isObject(payload.error)) {
    const message = typeof payload.error.message === "string" ? payload.error.message : "agent error";
    return { kind: "error", text: message, data: { code: payload.error.code } };
  }
  if (isObject(payload.result) && typeof payload.result.stopReason === "string") {
    return { kind: "turn_end", text: null, data: { stopReason: payload.result.stopReason } };
  }
  return null; // plain responses (session/new result etc.)
}
