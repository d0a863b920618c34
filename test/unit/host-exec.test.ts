// The real Host's process runner, on a harmless command.
import { describe, expect, it } from "vitest";
import { realHost } from "../../native/host/exec";

describe("realHost.tryRun onOutput", () => {
  it("passes a character split across two writes on whole", async () => {
    const chunks: string[] = [];
    const r = await realHost.tryRun("sh", ["-c", "printf '\\303'; sleep 0.2; printf '\\251\\n'"], { onOutput: (c) => chunks.push(c) });
    expect(r.stdout).toBe("é\n");
    expect(chunks.join("")).toBe("é\n");
  });
});
