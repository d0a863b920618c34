// Preloaded (`node --require`) into a program's process by berth: installs the cached TypeScript hook (transpile.ts)
// and defers what @pulumi/pulumi loads but the run does not need (lazy.ts).
import { deferPulumiExtras } from "./lazy";
import { register } from "./transpile";

const config = JSON.parse(process.env.BERTH_TRANSPILE ?? "{}");
deferPulumiExtras(config.pulumiDir);
register(config);
