// The pulumi-resource-berth plugin: Pulumi's engine starts it with its own address as the argument and reads the
// port to dial from the first line of stdout.
import { berthProviders } from "../resources";
import { openRuntime } from "../runtimes";
import { serveProvider } from "./server";

export async function main(): Promise<void> {
  // One plugin process serves one provider instance: its configuration's runtime, this machine or another.
  const server = await serveProvider((config, programDir) => berthProviders(openRuntime(config), programDir));
  process.stdout.write(`${server.port}\n`);
}
