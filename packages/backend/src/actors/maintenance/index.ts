// The maintenance actor (one per organization, key ["org", orgId, "maintenance"]): a durable cron that
// deletes orphaned sandboxes — ones labelled with this org whose task is gone, archived or killed
// without KEEP_SANDBOX (a crash between "archived" and "destroyed", a failed createTask, a sandbox made
// by a replayed step after the task ended). Armed by the organization on first use; kept out of every
// hot path: nothing waits for it, and it only runs on providers that implement `reapOrphans`.
import { errorMessage, MaintenanceKeySchema } from "@kiln/shared";
import { actor } from "rivetkit";
import { AUTH_DISABLED } from "../../auth/actor-auth.ts";
import type { BackendDeps } from "../../deps.ts";

export const REAPER_CRON = "reap-orphans";

export interface ReapReport {
  at: number;
  /** Sandbox names deleted, per provider. */
  deleted: Record<string, string[]>;
  /** Providers whose reap failed (the others still ran). */
  errors: Record<string, string>;
}

interface MaintenanceVars {
  /** A reap in flight (cron and a manual call never overlap; the second joins the first). */
  running: Promise<ReapReport> | null;
}

interface OrgForMaintenance {
  listLiveTaskIds(): Promise<string[]>;
}

export function makeMaintenanceActor(deps: BackendDeps) {
  const interval = deps.config.KILN_REAPER_INTERVAL_MS;
  const reapers = () => Object.values(deps.providers).filter((p) => p?.reapOrphans);
  // Only Kiln itself (the organization, the cron) drives this actor.
  const auth = deps.auth ?? AUTH_DISABLED;
  const internalOpts = () => {
    const params = auth.internalParams();
    return params ? { params } : {};
  };

  return actor({
    options: { actionTimeout: 5 * 60_000 },
    ...auth.hooksFor(MaintenanceKeySchema),
    createVars: (): MaintenanceVars => ({ running: null }),
    actions: {
      /** Idempotent: (re)arms the cron only when missing or its interval changed. Returns whether it armed. */
      arm: async (c): Promise<boolean> => {
        auth.requireInternal(c, "arm");
        const job = await c.cron.get(REAPER_CRON);
        if (job?.kind === "every" && job.interval === interval && job.action === "reap") return false;
        await c.cron.every({ name: REAPER_CRON, interval, action: "reap", maxHistory: 20 });
        return true;
      },

      /** Cron target (also callable by Kiln itself): one reap over every provider that supports it. */
      reap: async (c): Promise<ReapReport> => {
        auth.requireInternal(c, "reap");
        if (c.vars.running) return c.vars.running;
        const [, orgId = "default"] = c.key;
        const work = (async (): Promise<ReapReport> => {
          const report: ReapReport = { at: Date.now(), deleted: {}, errors: {} };
          const providers = reapers();
          if (providers.length === 0) {
            // The backend restarted without a reaping provider (Daytona turned off): stop waking up.
            await c.cron.delete(REAPER_CRON);
            return report;
          }
          const client = c.client() as { organization: { getOrCreate(key: string[], opts?: object): OrgForMaintenance } };
          const org = client.organization.getOrCreate(["org", orgId], internalOpts());
          for (const provider of providers) {
            if (!provider?.reapOrphans) continue;
            try {
              report.deleted[provider.id] = await provider.reapOrphans(() => org.listLiveTaskIds(), { org: orgId });
            } catch (error) {
              report.errors[provider.id] = errorMessage(error);
              c.log.error({ msg: "reaping orphaned sandboxes", provider: provider.id, error: errorMessage(error) });
            }
          }
          return report;
        })();
        c.vars.running = work;
        try {
          return await work;
        } finally {
          c.vars.running = null;
        }
      },
    },
  });
}
