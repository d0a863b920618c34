import * as pulumi from "@pulumi/pulumi";
import * as berth from "berth-iac";

const config = new pulumi.Config();
const port = config.getNumber("port") ?? 5000;
// `pulumi config set --secret registry:password …`; only its bcrypt hash reaches the state.
const password = config.getSecret("password") ?? pulumi.secret("change-me");
const auth = { username: "ci", password };

// The base the Dockerfile builds FROM (scripts/busybox-rootfs.sh makes the tarball).
const base = new berth.Image("base", {
  name: "registry-example-busybox:latest",
  rootfs: { tarball: "busybox-rootfs.tar" },
  config: { cmd: ["sh"] },
});

const data = new berth.Volume("data", {});
const registry = new berth.Registry("registry", { port, volume: data.name, users: [auth] });

const app = new berth.Image(
  "app",
  {
    name: pulumi.interpolate`${registry.endpoint}/app:1`,
    build: { context: "app", args: { GREETING: config.get("greeting") ?? "hello" } },
    push: true,
    registry: { auth },
  },
  { dependsOn: [base] },
);

// It needs no network: "none" gives it only loopback.
const worker = new berth.Container("worker", { image: app.imageId, networkMode: "none", stopTimeout: 1 });

export const registryUrl = registry.url;
export const repoDigests = app.repoDigests;
export const workerId = worker.name;
