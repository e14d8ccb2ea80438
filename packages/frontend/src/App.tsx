// Shell: sidebar, connection banner and the hash-routed main view.
import type { ConnectionState } from "@kiln/client";
import type { OrganizationSnapshot, SessionInfo, TaskRecord } from "@kiln/shared";
import { useCallback, useState } from "react";
import { NewTaskForm } from "./NewTaskForm.tsx";
import { Sidebar } from "./Sidebar.tsx";
import { TaskView } from "./TaskView.tsx";
import { badgeFor } from "./format.ts";
import { type Live, hrefFor, navigate, useOrganization, useRoute } from "./hooks.ts";
import { type ClientChoice, ORG_ID } from "./kilnClient.ts";

export function App({ choice, session = null }: { choice: ClientChoice; session?: SessionInfo | null }) {
  const { client } = choice;
  const route = useRoute();
  const org = useOrganization(client, ORG_ID);
  const [taskConnection, setTaskConnection] = useState<ConnectionState | null>(null);
  // Tasks this tab just created: the task view renders them at once, before the first snapshot arrives.
  const [created, setCreated] = useState<Record<string, TaskRecord>>({});
  const onCreated = useCallback((task: TaskRecord) => {
    setCreated((c) => ({ ...c, [task.taskId]: task }));
    navigate(hrefFor.task(task.taskId));
  }, []);

  return (
    <div className="app">
      <Sidebar
        client={client}
        org={org}
        activeTaskId={route.name === "task" ? route.taskId : null}
        mode={choice.mode}
        endpoint={choice.endpoint}
        session={session}
      />
      <main className="main">
        <ConnectionBanner states={[org.connection, route.name === "task" ? taskConnection : null]} />
        {route.name === "home" && <Home org={org} />}
        {route.name === "new" && (
          <NewTaskForm key={route.repoId ?? ""} client={client} org={org.value} initialRepoId={route.repoId} onCreated={onCreated} />
        )}
        {route.name === "task" && (
          <TaskView
            key={route.taskId}
            client={client}
            taskId={route.taskId}
            initialTask={created[route.taskId] ?? null}
            onConnection={setTaskConnection}
            github={session?.githubConfigured ?? false}
          />
        )}
        {route.name === "not-found" && (
          <div className="empty-state">
            <h1>Nothing at {route.path}</h1>
            <p>
              <a href={hrefFor.home()}>Go to the overview</a>
            </p>
          </div>
        )}
      </main>
    </div>
  );
}

function ConnectionBanner({ states }: { states: Array<ConnectionState | null> }) {
  const closed = states.includes("closed");
  const reconnecting = states.includes("reconnecting");
  if (!closed && !reconnecting) return null;
  return (
    <div className={`connection-banner ${closed ? "closed" : "reconnecting"}`} role="status" data-testid="connection-banner">
      {closed ? (
        <>
          <strong>Disconnected from the Kiln backend.</strong> Live updates have stopped.
          <button type="button" className="btn btn-small" onClick={() => window.location.reload()}>
            Reload
          </button>
        </>
      ) : (
        <>
          <span className="spinner" aria-hidden="true" />
          <strong>Connection lost — reconnecting…</strong> What you see may be out of date until it is back.
        </>
      )}
    </div>
  );
}

function Home({ org }: { org: Live<OrganizationSnapshot> }) {
  if (org.error && !org.value) {
    return (
      <div className="empty-state">
        <h1>Could not reach Kiln</h1>
        <p className="error-text">{org.error.message}</p>
        <button type="button" className="btn btn-ghost" onClick={() => window.location.reload()}>
          Try again
        </button>
      </div>
    );
  }
  if (!org.value) {
    return (
      <div className="empty-state">
        <span className="spinner large" aria-hidden="true" />
        <p>Loading organization…</p>
      </div>
    );
  }
  const { repos, tasks } = org.value;
  if (repos.length === 0) {
    return (
      <div className="empty-state">
        <h1>Welcome to Kiln</h1>
        <p>Background coding agents, each in its own sandbox on its own branch.</p>
        <ol className="steps-hint">
          <li>Add a repository in the sidebar — a remote URL or a local path.</li>
          <li>Create a task with a prompt; Kiln provisions a sandbox and starts the agent.</li>
          <li>Follow the transcript, answer questions, review the diff.</li>
        </ol>
      </div>
    );
  }
  const counts = new Map<string, number>();
  for (const t of tasks) {
    const label = badgeFor(t.status).label;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return (
    <div className="empty-state">
      <h1>{tasks.length === 0 ? "No tasks yet" : "Pick a task"}</h1>
      <p>
        {tasks.length === 0
          ? `${repos.length} ${repos.length === 1 ? "repository is" : "repositories are"} ready. Start a task to put an agent to work.`
          : [...counts].map(([label, n]) => `${n} ${label.toLowerCase()}`).join(" · ")}
      </p>
      <button type="button" className="btn btn-primary" onClick={() => navigate(hrefFor.newTask())}>
        New task
      </button>
    </div>
  );
}
