// Sign-in gate and the signed-in user's bar. Single-user mode (no GitHub sign-in) renders the workbench
// at once for org "default"; with sign-in on, a signed-out visitor sees the GitHub sign-in button and a
// signed-in user works in one of their organizations (GitHub accounts the App is installed on).
import type { KilnClient } from "@kiln/client";
import { SIGN_IN_ERROR_PARAM, type SessionInfo } from "@kiln/shared";
import { useEffect, useState } from "react";
import { App } from "./App.tsx";
import { ORG_STORAGE_KEY, SignOutButton } from "./Account.tsx";
import { type ClientChoice, ORG_ID, setOrgId } from "./kilnClient.ts";

/** The org to open: the remembered one if still allowed, else the first. null: the user has none. */
export function pickOrg(session: SessionInfo, remembered: string | null): string | null {
  if (!session.authEnabled) return "default";
  if (remembered && session.orgs.includes(remembered)) return remembered;
  return session.orgs[0] ?? null;
}

function remembered(): string | null {
  try {
    return window.localStorage.getItem(ORG_STORAGE_KEY);
  } catch {
    return null; // storage disabled: pick the first org every time
  }
}

export function Root({ choice }: { choice: ClientChoice }) {
  const [state, setState] = useState<{ session: SessionInfo | null; error: Error | null; loaded: boolean }>({
    session: null,
    error: null,
    loaded: false,
  });
  useEffect(() => {
    let active = true;
    choice.client.getSession().then(
      (session) => active && setState({ session, error: null, loaded: true }),
      (error: unknown) =>
        active && setState({ session: null, error: error instanceof Error ? error : new Error(String(error)), loaded: true }),
    );
    return () => {
      active = false;
    };
  }, [choice.client]);

  if (!state.loaded) {
    return (
      <div className="gate">
        <span className="spinner large" aria-hidden="true" />
      </div>
    );
  }
  // No session info (backend unreachable): the workbench shows its own "could not reach Kiln" state.
  const session = state.session;
  if (session?.authEnabled && !session.user) return <SignIn session={session} />;
  if (session) {
    const orgId = pickOrg(session, remembered());
    if (orgId === null) return <NoOrganizations client={choice.client} session={session} />;
    setOrgId(orgId);
  }
  return <App key={ORG_ID} choice={choice} session={session} />;
}

/** Why the last sign-in failed (the backend's callback sends the browser back with it), read once. */
function takeSignInError(): string | null {
  const url = new URL(window.location.href);
  const message = url.searchParams.get(SIGN_IN_ERROR_PARAM);
  if (message === null) return null;
  url.searchParams.delete(SIGN_IN_ERROR_PARAM);
  window.history.replaceState(null, "", url); // a reload should not show it again
  return message.slice(0, 300); // anyone can craft this link: shown as text, and kept short
}

function SignIn({ session }: { session: SessionInfo }) {
  const [error] = useState(takeSignInError);
  return (
    <div className="gate" data-testid="sign-in">
      <div className="gate-card">
        <span className="brand-mark big" aria-hidden="true" />
        <h1>Kiln</h1>
        <p className="muted">Background coding agents for your GitHub repositories.</p>
        {error && (
          <p className="error-text" role="alert" data-testid="sign-in-error">
            Sign-in failed: {error}
          </p>
        )}
        <a className="btn btn-primary" href={session.signInUrl ?? "/v1/auth/github/login"} data-testid="sign-in-button">
          Sign in with GitHub
        </a>
      </div>
    </div>
  );
}

function NoOrganizations({ client, session }: { client: KilnClient; session: SessionInfo }) {
  return (
    <div className="gate" data-testid="no-orgs">
      <div className="gate-card">
        <h1>No organizations yet</h1>
        <p className="muted">
          Signed in as <strong>{session.user?.login}</strong>, but the Kiln GitHub App is not installed on any account you can reach.
        </p>
        {session.installUrl && (
          <a className="btn btn-primary" href={session.installUrl} target="_blank" rel="noreferrer">
            Install the GitHub App
          </a>
        )}
        <p className="muted small">After installing, sign in again so Kiln sees the new installation.</p>
        <SignOutButton client={client} />
      </div>
    </div>
  );
}
