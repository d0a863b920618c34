// The Runtime conformance suite against the remote runtime: over real SSH (OpenSSH's client, a simulated host's
// sshd in its own network namespace, its own berth root) to `berth agent` there.
import { remoteRuntime } from "../../native/remote/client";
import { makeSimHosts, type SimHosts } from "./sim-hosts";
import { runtimeSuite } from "./runtime-suite";

runtimeSuite("remote over ssh", async () => {
  let sim: SimHosts | undefined;
  try {
    sim = await makeSimHosts(1);
    const runtime = remoteRuntime(sim.hosts[0].target);
    return {
      runtime,
      async cleanup() {
        await runtime.close();
        await sim!.cleanup();
      },
    };
  } catch (e) {
    await sim?.cleanup();
    throw e;
  }
});
