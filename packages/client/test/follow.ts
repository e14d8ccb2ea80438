// Shared by the client's end-to-end suites: follow a task through its subscription until it answers.
import { DEFAULT_ORG_ID, type TaskDetail } from "@kiln/shared";
import type { KilnClient } from "../src/index.ts";

const org = DEFAULT_ORG_ID;

/** Every distinct step state seen through the subscription, in arrival order. */
export function follow(client: KilnClient, taskId: string, timeoutMs: number) {
  const transitions: string[] = [];
  return new Promise<{ detail: TaskDetail; transitions: string[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`task ${taskId} timed out; saw ${transitions.join(", ")}`)), timeoutMs);
    const sub = client.subscribeTask(org, taskId, {
      onChange: (d) => {
        for (const s of d.steps) {
          const mark = `${s.step}:${s.state}`;
          if (s.state !== "pending" && !transitions.includes(mark)) transitions.push(mark);
        }
        const reply = d.transcript.filter((e) => e.kind === "agent_message").map((e) => e.text).join("");
        if (d.task.status === "idle" && reply.includes(d.task.prompt)) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve({ detail: d, transitions });
        } else if (d.task.status === "error") {
          clearTimeout(timer);
          sub.unsubscribe();
          reject(new Error(`task failed: ${d.task.error}`));
        }
      },
      onError: (e) => reject(e),
    });
  });
}
