// The Runtime conformance suite against the native runtime, on a berth root and run directory of its own.
import * as fs from "node:fs";
import * as path from "node:path";
import { createNativeRuntime } from "../../native";
import { stopSupervisor } from "./helpers";
import { runtimeSuite } from "./runtime-suite";

runtimeSuite("local", async () => {
  const dir = fs.mkdtempSync("/tmp/berth-suite-local-");
  const root = path.join(dir, "root");
  return {
    runtime: createNativeRuntime({ root, runDir: path.join(dir, "run") }),
    async cleanup() {
      stopSupervisor(root);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});
