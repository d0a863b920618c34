import * as pulumi from "@pulumi/pulumi";
import * as berth from "berth-iac";

const count = new pulumi.Config().getNumber("count") ?? 1000;
for (let i = 0; i < count; i++) new berth.Volume(`v${i}`, { labels: { index: String(i) } });
