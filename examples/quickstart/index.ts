import * as pulumi from "@pulumi/pulumi";
import * as berth from "berth-iac";

const config = new pulumi.Config();
const port = config.getNumber("port") ?? 8080;
const greeting = config.get("greeting") ?? "Hello from berth";
const subnet = config.get("subnet") ?? "10.89.0.0/24";

// The base image: a busybox root filesystem (scripts/busybox-rootfs.sh makes the tarball).
const base = new berth.Image("base", {
  name: "quickstart-base:latest",
  rootfs: { tarball: "busybox-rootfs.tar" },
  config: { cmd: ["sh"], env: ["PATH=/bin"], workdir: "/", exposedPorts: ["80/tcp"] },
});

const net = new berth.Network("net", { subnet });

const site = new berth.Volume("site", {});

const web = new berth.Container("web", {
  image: base.imageId,
  network: net.name,
  volumes: [{ volume: site.name, target: "/www" }],
  env: { GREETING: greeting },
  // The page lives in the volume: written once, then kept across container replacements.
  command: [
    "sh",
    "-c",
    'test -f /www/index.html || echo "<h1>$GREETING</h1>" > /www/index.html; exec httpd -f -p 80 -h /www',
  ],
  ports: [{ containerPort: 80, hostPort: port, hostIp: "127.0.0.1" }],
  // busybox httpd as PID 1 ignores SIGTERM: don't wait Docker's default 10 s before SIGKILL on a replace.
  stopTimeout: 1,
});

export const url = pulumi.interpolate`http://127.0.0.1:${port}/`;
export const containerIp = web.ip;
export const volumePath = site.mountpoint;
