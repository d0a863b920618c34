// Whether a Docker engine answers, for the rows that compare berth with it (start `dockerd` by hand to get them).
import { spawnSync } from "node:child_process";

export const dockerAvailable = (): boolean => spawnSync("docker", ["info"], { stdio: "ignore", timeout: 5000 }).status === 0;
