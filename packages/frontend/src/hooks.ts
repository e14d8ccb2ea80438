// Subscriptions and routing as React hooks. Every view reads live state from these: no polling, no refresh.
import type { ConnectionState, KilnClient } from "@kiln/client";
import type { OrganizationSnapshot, TaskDetail } from "@kiln/shared";
import { useEffect, useState, useSyncExternalStore } from "react";

export type Route = { name: "home" } | { name: "new"; repoId: string | null } | { name: "task"; taskId: string } | { name: "not-found"; path: string };

export function parseRoute(hash: string): Route {
  const [path = "", query = ""] = hash.replace(/^#/, "").split("?");
  const clean = path.replace(/\/+$/, "") || "/";
  if (clean === "/") return { name: "home" };
  if (clean === "/new") return { name: "new", repoId: new URLSearchParams(query).get("repo") };
  const task = /^\/tasks\/([^/]+)$/.exec(clean);
  if (task?.[1]) return { name: "task", taskId: decodeURIComponent(task[1]) };
  return { name: "not-found", path: clean };
}

export const hrefFor = {
  home: () => "#/",
  newTask: (repoId?: string) => (repoId ? `#/new?repo=${encodeURIComponent(repoId)}` : "#/new"),
  task: (taskId: string) => `#/tasks/${encodeURIComponent(taskId)}`,
};

export function navigate(href: string) {
  window.location.hash = href.replace(/^#/, "");
}

const subscribeHash = (onChange: () => void) => {
  window.addEventListener("hashchange", onChange);
  return () => window.removeEventListener("hashchange", onChange);
};

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribeHash, () => window.location.hash);
  return parseRoute(hash);
}

export interface Live<T> {
  value: T | null;
  error: Error | null;
  connection: ConnectionState;
}

export function useOrganization(client: KilnClient, orgId: string): Live<OrganizationSnapshot> {
  const [state, setState] = useState<Live<OrganizationSnapshot>>({ value: null, error: null, connection: "connecting" });
  useEffect(() => {
    setState({ value: null, error: null, connection: "connecting" });
    const sub = client.subscribeOrganization(orgId, {
      onChange: (value) => setState((s) => ({ ...s, value, error: null })),
      onConnectionChange: (connection) => setState((s) => ({ ...s, connection })),
      onError: (error) => setState((s) => ({ ...s, error })),
    });
    return () => sub.unsubscribe();
  }, [client, orgId]);
  return state;
}

export function useTask(client: KilnClient, orgId: string, taskId: string): Live<TaskDetail> {
  const [state, setState] = useState<Live<TaskDetail> & { taskId: string }>({ taskId, value: null, error: null, connection: "connecting" });
  useEffect(() => {
    setState({ taskId, value: null, error: null, connection: "connecting" });
    const sub = client.subscribeTask(orgId, taskId, {
      onChange: (value) => setState((s) => (s.taskId === taskId ? { ...s, value, error: null } : s)),
      onConnectionChange: (connection) => setState((s) => (s.taskId === taskId ? { ...s, connection } : s)),
      onError: (error) => setState((s) => (s.taskId === taskId ? { ...s, error } : s)),
    });
    return () => sub.unsubscribe();
  }, [client, orgId, taskId]);
  // Never show another task's state for a frame after navigating.
  return state.taskId === taskId ? state : { value: null, error: null, connection: "connecting" };
}

/** Current time, re-rendered every `ms` while `active` (for live step durations; display only). */
export function useNow(active: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
  return now;
}

/** Runs an async action, tracking pending state and keeping its error for display. */
export function useAction() {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  async function run<T>(action: () => Promise<T>): Promise<T | undefined> {
    setPending(true);
    setError(null);
    try {
      return await action();
    } catch (e) {
      setError(e instanceof Error ? e : new Error(String(e)));
      return undefined;
    } finally {
      setPending(false);
    }
  }
  return { pending, error, run, clearError: () => setError(null) };
}
