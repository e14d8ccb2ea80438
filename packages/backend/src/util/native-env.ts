// Bun's `process.env` assignments do not reach the C environment, but RivetKit's native core reads its
// settings (engine storage path) with getenv. Set them in the real environment through libc.
import { dlopen, FFIType } from "bun:ffi";

let setenv: ((name: Buffer, value: Buffer, overwrite: number) => number) | null = null;

export function setNativeEnv(name: string, value: string): void {
  process.env[name] = value;
  if (typeof Bun === "undefined") return; // Node writes process.env through to the C environment
  setenv ??= dlopen("libc.so.6", {
    setenv: { args: [FFIType.cstring, FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
  }).symbols.setenv as unknown as typeof setenv;
  const result = setenv!(Buffer.from(`${name}\0`), Buffer.from(`${value}\0`), 1);
  if (result !== 0) throw new Error(`setenv(${name}) failed`);
}
