// Loads drizzle-kit output into the shape rivetkit's drizzle provider expects. Reading the files at
// runtime keeps plain Bun/Node (no bundler `?raw` imports) working.
import { readFileSync } from "node:fs";

interface Journal {
  entries: Array<{ idx: number; when: number; tag: string }>;
}

export function loadMigrations(drizzleDir: URL): { journal: Journal; migrations: Record<string, string> } {
  const journal = JSON.parse(readFileSync(new URL("meta/_journal.json", drizzleDir), "utf8")) as Journal;
  const migrations: Record<string, string> = {};
  for (const entry of journal.entries) {
    migrations[`m${String(entry.idx).padStart(4, "0")}`] = readFileSync(new URL(`${entry.tag}.sql`, drizzleDir), "utf8");
  }
  return { journal, migrations };
}
