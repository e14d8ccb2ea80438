// A character counter for inputs with a size limit (the limits are the backend's, from @kiln/shared).
export function CharCounter({ length, limit, testId, always }: { length: number; limit: number; testId?: string; always?: boolean }) {
  const over = length > limit;
  // Quiet until the text gets long; always shown once over the limit.
  if (!always && length < limit * 0.8) return null;
  return (
    <small className={over ? "form-error char-counter" : "muted char-counter"} data-testid={testId} aria-live="polite">
      {length.toLocaleString()} / {limit.toLocaleString()} characters{over ? ` — ${(length - limit).toLocaleString()} over the limit` : ""}
    </small>
  );
}
