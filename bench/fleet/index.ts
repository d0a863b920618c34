import * as pulumi from "@pulumi/pulumi";
import * as berth from "berth-iac";

const config = new pulumi.Config();
const count = config.getNumber("count") ?? 20;
// Hosts to spread the containers over, round-robin (berth.Provider args each); none: this machine.
const hosts = config.getObject<berth.ProviderArgs[]>("hosts");

const targets = (hosts ?? [undefined]).map((args, i) => {
  const opts = args ? { provider: new berth.Provider(`host${i}`, args) } : {};
  const suffix = args ? String(i) : "";
  const image = new berth.Image(`busybox${suffix}`, {
    name: "bench-busybox:latest",
    rootfs: { tarball: config.require("rootfs") },
  }, opts);
  const net = new berth.Network(`net${suffix}`, { subnet: config.get("subnet") ?? "10.91.0.0/22" }, opts);
  return { image, net, opts };
});

for (let i = 0; i < count; i++) {
  const { image, net, opts } = targets[i % targets.length];
  new berth.Container(`c${i}`, {
    image: image.imageId,
    network: net.name,
    command: ["sleep", "3600"],
    stopTimeout: 0,
  }, opts);
}
