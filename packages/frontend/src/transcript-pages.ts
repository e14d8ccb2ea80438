// Older transcript pages for one session: getTask carries the latest window and a cursor; scrolling to
// the top fetches the page before it (getTranscriptPage) until the session's first event.
import type { KilnClient } from "@kiln/client";
import type { TranscriptEvent } from "@kiln/shared";
import { useCallback, useEffect, useRef, useState } from "react";
import { ORG_ID } from "./kilnClient.ts";

export function useOlderTranscript(client: KilnClient, taskId: string, sessionId: string, windowBefore: number | undefined) {
  const [older, setOlder] = useState<TranscriptEvent[]>([]);
  const [cursor, setCursor] = useState<number | null>(windowBefore ?? null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const loaded = useRef(false);
  const inFlight = useRef(false); // scroll events fire faster than `loading` re-renders

  // Another session, or a window that has not been paged yet: start from the window's cursor.
  useEffect(() => {
    setOlder([]);
    setError(null);
    loaded.current = false;
    setCursor(windowBefore ?? null);
  }, [taskId, sessionId]);
  useEffect(() => {
    if (!loaded.current) setCursor(windowBefore ?? null);
  }, [windowBefore]);

  const loadOlder = useCallback(async () => {
    if (inFlight.current || cursor === null) return;
    inFlight.current = true;
    setLoading(true);
    try {
      const page = await client.getTranscriptPage(ORG_ID, { taskId, sessionId, before: cursor, limit: 200 });
      loaded.current = true;
      setOlder((prev) => {
        const have = new Set(prev.map((e) => e.eventIndex));
        return [...page.events.filter((e) => !have.has(e.eventIndex)), ...prev];
      });
      setCursor(page.before);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e : new Error(String(e)));
    } finally {
      inFlight.current = false;
      setLoading(false);
    }
  }, [client, taskId, sessionId, cursor]);

  return { older, hasOlder: cursor !== null, loading, error, loadOlder };
}
