// What a gateway request through Kiln may address: a Kiln actor by a well-formed key (the query form
// `/gateway/<name>?rvt-method=get|getOrCreate&rvt-key=…`, as the RivetKit client sends it) or an actor
// by its engine id. A malformed org/task id in the key is refused here, before the engine or any actor
// sees it, and a client may not carry its own engine token (`@token` segment, `rvt-token`).
import { GitHubStateKeySchema, MaintenanceKeySchema, OrgKeySchema, TaskKeySchema } from "@kiln/shared";
import type { z } from "zod";

const KEY_SCHEMAS: Record<string, z.ZodType> = {
  organization: OrgKeySchema,
  task: TaskKeySchema,
  githubState: GitHubStateKeySchema,
  maintenance: MaintenanceKeySchema,
};
const ACTOR_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function checkGatewayTarget(path: string, params: URLSearchParams): boolean {
  if (params.has("rvt-token")) return false;
  const target = decodeURIComponent(path.split("/")[2] ?? "");
  const schema = KEY_SCHEMAS[target];
  if (!schema) return ACTOR_ID.test(target) && !params.has("rvt-method");
  const method = params.get("rvt-method");
  if (method !== "get" && method !== "getOrCreate") return false;
  const keys = params.getAll("rvt-key");
  if (keys.length !== 1) return false;
  return schema.safeParse(keys[0]!.split(",")).success;
}
