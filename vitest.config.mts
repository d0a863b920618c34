import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Host tests create real namespaces, bridges and iptables rules; running files one at a time keeps
    // their failures readable and the 2-core machine responsive.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    globalSetup: ["test/global-teardown.ts"],
  },
});
