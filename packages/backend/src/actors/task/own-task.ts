// Every task action whose input names a task must name this one: the key says which task an actor is,
// and an input `taskId` that is malformed or names another task is `invalid_input` before the action runs.
import { TaskIdSchema } from "@kiln/shared";
import { fail, validate } from "../../errors.ts";

// biome-ignore lint/suspicious/noExplicitAny: RivetKit infers each action's type from this object.
type Actions = Record<string, (c: any, ...args: any[]) => unknown>;

export function ownTaskActions<T extends Actions>(actions: T): T {
  const out: Actions = {};
  for (const [name, action] of Object.entries(actions)) {
    out[name] = (c: { key: readonly string[] }, ...args: unknown[]) => {
      const input = args[0];
      if (input !== null && typeof input === "object" && "taskId" in input) {
        const taskId = validate(TaskIdSchema, (input as { taskId: unknown }).taskId, "taskId");
        if (taskId !== c.key[3]) fail("invalid_input", `taskId ${taskId} is not this task`);
      }
      return action(c, ...args);
    };
  }
  return out as T;
}
