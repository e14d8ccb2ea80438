#!/usr/bin/env node
// Kiln's offline "scripted" ACP agent (served as agent id `mock`).
// Speaks ACP JSON-RPC 2.0 over stdio, one JSON message per line, the way the
// sandbox-agent daemon expects. No dependencies: it must run under node >= 20 and bun.
//
// Prompt lines are instructions (anything else is plain text):
//   write <path> <content...>   write "<content>\n" to <cwd>/<path>
//   ask-permission              ask the client for permission (session/request_permission)
//   fail                        answer the prompt with a JSON-RPC error
//   sleep <ms>                  wait (aborted by session/cancel)
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";

const REPLAY_PREFIX = "Previous session history is replayed below";
const MAX_SLEEP_MS = 600_000;

const sessions = new Map(); // sessionId -> { cwd, turn: { cancelled, abort: AbortController } | null }
const pendingClientRequests = new Map(); // our request id -> resolve(response message)
let sessionCounter = 0;
let requestCounter = 0;
let toolCallCounter = 0;

const send = (msg) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...msg }) + "\n");
const respond = (id, result) => send({ id, result });
const respondError = (id, code, message) => send({ id, error: { code, message } });
const update = (sessionId, u) => send({ method: "session/update", params: { sessionId, update: u } });
const textBlock = (text) => ({ type: "text", text });
const say = (sessionId, text) => update(sessionId, { sessionUpdate: "agent_message_chunk", content: textBlock(text) });

class Cancelled extends Error {}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Cancelled());
    const timer = setTimeout(() => { signal.removeEventListener("abort", onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(new Cancelled()); };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

// Agent -> client request; resolves with the client's response message (or rejects on cancel).
function requestClient(method, params, signal) {
  const id = `scripted-req-${++requestCounter}`;
  return new Promise((resolve, reject) => {
    const onAbort = () => { pendingClientRequests.delete(id); reject(new Cancelled()); };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    pendingClientRequests.set(id, (msg) => { signal.removeEventListener("abort", onAbort); resolve(msg); });
    send({ id, method, params });
  });
}

// The SDK prepends a transcript-replay block after a resume; the user's text is the last other text block.
function promptText(blocks) {
  const texts = (Array.isArray(blocks) ? blocks : [])
    .filter((b) => b?.type === "text" && typeof b.text === "string" && !b.text.startsWith(REPLAY_PREFIX));
  return texts.at(-1)?.text ?? "";
}

function parseInstruction(line) {
  let m;
  if ((m = /^write\s+(\S+)(?:\s+(.*))?$/.exec(line))) return { op: "write", path: m[1], content: m[2] ?? "" };
  if (line === "ask-permission") return { op: "ask-permission" };
  if (line === "fail") return { op: "fail" };
  if ((m = /^sleep\s+(\d+)$/.exec(line))) return { op: "sleep", ms: Math.min(Number(m[1]), MAX_SLEEP_MS) };
  return null;
}

// Split text into a few chunks on code-point boundaries so concatenation is exact.
function chunks(text, parts = 3) {
  const chars = Array.from(text);
  const size = Math.max(1, Math.ceil(chars.length / parts));
  const out = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""));
  return out.length ? out : [""];
}

async function runWrite(sessionId, cwd, ins, written) {
  const target = path.resolve(cwd, ins.path);
  const rel = path.relative(cwd, target);
  if (!rel || rel.startsWith("..") || path.isAbsolute(rel)) {
    say(sessionId, `Refused to write ${ins.path}: path escapes the working directory.\n`);
    return;
  }
  const toolCallId = `tool-${++toolCallCounter}`;
  update(sessionId, {
    sessionUpdate: "tool_call", toolCallId, title: `Write ${ins.path}`, kind: "edit",
    status: "in_progress", locations: [{ path: target }], rawInput: { path: ins.path, content: ins.content },
  });
  try {
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, ins.content + "\n");
    written.push(ins.path);
    update(sessionId, { sessionUpdate: "tool_call_update", toolCallId, status: "completed" });
  } catch (err) {
    update(sessionId, {
      sessionUpdate: "tool_call_update", toolCallId, status: "failed",
      content: [{ type: "content", content: textBlock(String(err?.message ?? err)) }],
    });
  }
}

async function runAskPermission(sessionId, signal) {
  const toolCallId = `tool-${++toolCallCounter}`;
  const title = "Run a scripted command";
  update(sessionId, { sessionUpdate: "tool_call", toolCallId, title, kind: "execute", status: "pending" });
  const reply = await requestClient("session/request_permission", {
    sessionId,
    toolCall: { toolCallId, title, kind: "execute", status: "pending" },
    options: [
      { optionId: "allow-once", name: "Allow", kind: "allow_once" },
      { optionId: "reject-once", name: "Reject", kind: "reject_once" },
    ],
  }, signal);
  const outcome = reply?.result?.outcome;
  const allowed = outcome?.outcome === "selected" && outcome.optionId === "allow-once";
  update(sessionId, { sessionUpdate: "tool_call_update", toolCallId, status: allowed ? "completed" : "failed" });
  say(sessionId, allowed ? "Permission granted\n" : "Permission denied\n");
}

async function handlePrompt(id, params) {
  const sessionId = params?.sessionId;
  const session = sessions.get(sessionId);
  if (!session) return respondError(id, -32602, `unknown session: ${sessionId}`);
  session.turn?.abort.abort(); // a new prompt supersedes an unfinished one
  const turn = { abort: new AbortController() };
  session.turn = turn;

  const text = promptText(params.prompt);
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean)
    .map((line) => ({ line, ins: parseInstruction(line) }));
  const steps = lines.filter((l) => l.ins);
  const plan = (done) => update(sessionId, {
    sessionUpdate: "plan",
    entries: steps.map((s, i) => ({ content: s.line, priority: "medium", status: i < done ? "completed" : "pending" })),
  });

  try {
    update(sessionId, { sessionUpdate: "agent_thought_chunk", content: textBlock("Reading the instructions") });
    plan(0);
    const written = [];
    let done = 0;
    for (const { ins } of steps) {
      if (ins.op === "write") await runWrite(sessionId, session.cwd, ins, written);
      else if (ins.op === "ask-permission") await runAskPermission(sessionId, turn.abort.signal);
      else if (ins.op === "sleep") await sleep(ins.ms, turn.abort.signal);
      else if (ins.op === "fail") return respondError(id, -32603, "scripted failure requested");
      if (turn.abort.signal.aborted) throw new Cancelled();
      plan(++done);
    }
    for (const piece of chunks(`You said: ${text}\n`)) say(sessionId, piece);
    say(sessionId, written.length ? `Wrote ${written.join(", ")}.` : "No files written.");
    respond(id, { stopReason: "end_turn" });
  } catch (err) {
    if (err instanceof Cancelled) respond(id, { stopReason: "cancelled" });
    else respondError(id, -32603, String(err?.message ?? err));
  } finally {
    if (session.turn === turn) session.turn = null;
  }
}

function handleRequest(msg) {
  const { id, method, params } = msg;
  switch (method) {
    case "initialize":
      return respond(id, { protocolVersion: 1, agentCapabilities: { loadSession: false, promptCapabilities: {} }, authMethods: [] });
    case "session/new": {
      const sessionId = `scripted-${process.pid}-${++sessionCounter}`;
      sessions.set(sessionId, { cwd: path.resolve(process.cwd(), params?.cwd ?? "."), turn: null });
      return respond(id, { sessionId });
    }
    case "session/prompt":
      return void handlePrompt(id, params);
    case "session/set_mode":
      update(params?.sessionId, { sessionUpdate: "current_mode_update", currentModeId: params?.modeId });
      return respond(id, {});
    default:
      return respondError(id, -32601, `method not found: ${method}`);
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let msg;
  try { msg = JSON.parse(line); } catch { return void process.stderr.write(`scripted-agent: bad JSON: ${line}\n`); }
  if (msg.method === undefined) { // a response to one of our requests
    const resolve = pendingClientRequests.get(msg.id);
    pendingClientRequests.delete(msg.id);
    return resolve?.(msg);
  }
  if (msg.id === undefined) { // notification
    if (msg.method === "session/cancel") sessions.get(msg.params?.sessionId)?.turn?.abort.abort();
    return;
  }
  handleRequest(msg);
});
rl.on("close", () => process.exit(0));
