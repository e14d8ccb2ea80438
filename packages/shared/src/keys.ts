// Actor keys: the org and task ids a client puts in the key are input like any other, so each actor
// checks its key's shape before anything runs (backend auth/actor-auth.ts).
import { z } from "zod";
import { OrgIdSchema, TaskIdSchema } from "./domain.ts";

export const OrgKeySchema = z.tuple([z.literal("org"), OrgIdSchema]);
export const TaskKeySchema = z.tuple([z.literal("org"), OrgIdSchema, z.literal("task"), TaskIdSchema]);
export const GitHubStateKeySchema = z.tuple([z.literal("org"), OrgIdSchema, z.literal("github")]);
export const MaintenanceKeySchema = z.tuple([z.literal("org"), OrgIdSchema, z.literal("maintenance")]);
export type ActorKeySchema = typeof OrgKeySchema | typeof TaskKeySchema | typeof GitHubStateKeySchema | typeof MaintenanceKeySchema;
