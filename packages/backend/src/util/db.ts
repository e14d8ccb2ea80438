// RivetKit's SQLite groups transaction profiling by a static name, and warns about each unnamed shape.
// Drizzle's transaction config type does not know the field, hence the cast.
export const named = (name: string) => ({ name }) as never;
