// The isolation policy of local sandboxes (issue 10): with sign-in on (several users) the local provider
// must refuse to run sandboxes unisolated; single-user mode may opt out by name.
import { KilnError } from "@kiln/shared";
import { describe, expect, test } from "vitest";
import { bubblewrapWorks, resolveIsolation } from "../src/providers/local/isolation.ts";

describe("local sandbox isolation policy", () => {
  test("sign-in on + isolation none is refused with a message naming the fix", () => {
    let error: unknown;
    try {
      resolveIsolation("none", true);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).message).toMatch(/without isolation: install bubblewrap/);
  });

  test("single-user mode may opt out explicitly", () => {
    expect(resolveIsolation("none", false)).toBe("none");
  });

  test("the default is bubblewrap wherever bwrap works (npm test installs it), and sign-in keeps it", () => {
    expect(bubblewrapWorks()).toBe(true);
    expect(resolveIsolation(undefined, false)).toBe("bubblewrap");
    expect(resolveIsolation(undefined, true)).toBe("bubblewrap");
  });
});
