import * as pulumi from "@pulumi/pulumi";
import * as berth from "berth-iac";

const config = new pulumi.Config();
const count = config.getNumber("count") ?? 20;

const image = new berth.Image("busybox", {
  name: "bench-busybox:latest",
  rootfs: { tarball: config.require("rootfs") },
});
const net = new berth.Network("net", { subnet: config.get("subnet") ?? "10.91.0.0/22" });

for (let i = 0; i < count; i++) {
  new berth.Container(`c${i}`, {
    image: image.imageId,
    network: net.name,
    command: ["sleep", "3600"],
    stopTimeout: 0,
  });
}
