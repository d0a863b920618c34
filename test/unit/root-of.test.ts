// Which root a runtime uses: an empty BERTH_ROOT (`BERTH_ROOT= berth …`) is none, not the working directory.
import { afterEach, expect, it } from "vitest";
import { DEFAULT_ROOT, rootOf } from "../../native";

const saved = process.env.BERTH_ROOT;
afterEach(() => (saved === undefined ? delete process.env.BERTH_ROOT : (process.env.BERTH_ROOT = saved)));

it("takes the root given, else $BERTH_ROOT, else the default; an empty one counts as none", () => {
  process.env.BERTH_ROOT = "";
  expect(rootOf()).toBe(DEFAULT_ROOT);
  expect(rootOf("")).toBe(DEFAULT_ROOT);
  process.env.BERTH_ROOT = "/srv/berth";
  expect(rootOf()).toBe("/srv/berth");
  expect(rootOf("/x")).toBe("/x");
});
