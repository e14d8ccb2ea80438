// The signed-in user's bar in the sidebar (login, organization switcher, sign out). Nothing in
// single-user mode.
import type { KilnClient } from "@kiln/client";
import type { SessionInfo } from "@kiln/shared";
import { useState } from "react";
import { useAction } from "./hooks.ts";
import { ORG_ID } from "./kilnClient.ts";

export const ORG_STORAGE_KEY = "kiln.org";

export function SignOutButton({ client }: { client: KilnClient }) {
  const action = useAction();
  return (
    <button
      type="button"
      className="btn-link"
      data-testid="sign-out"
      disabled={action.pending}
      onClick={() => action.run(async () => {
        await client.signOut();
        window.location.reload();
      })}
    >
      Sign out
    </button>
  );
}

/** Sidebar footer: who is signed in, which org, sign out. Nothing in single-user mode. */
export function SessionBar({ client, session }: { client: KilnClient; session: SessionInfo | null }) {
  const [orgId, setOrg] = useState(ORG_ID);
  if (!session?.authEnabled || !session.user) return null;
  return (
    <section className="session-bar" aria-label="Account">
      {session.user.avatarUrl && <img className="avatar" src={session.user.avatarUrl} alt="" width={20} height={20} />}
      <span className="session-login" title={session.user.name ?? session.user.login}>
        {session.user.login}
      </span>
      {session.orgs.length > 1 ? (
        <select
          className="org-select"
          aria-label="Organization"
          data-testid="org-select"
          value={orgId}
          onChange={(e) => {
            setOrg(e.target.value);
            try {
              window.localStorage.setItem(ORG_STORAGE_KEY, e.target.value);
            } catch {
              // storage disabled: the choice lasts until the reload below only
            }
            window.location.hash = "#/";
            window.location.reload();
          }}
        >
          {session.orgs.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      ) : (
        <span className="org-name">{orgId}</span>
      )}
      <SignOutButton client={client} />
    </section>
  );
}
