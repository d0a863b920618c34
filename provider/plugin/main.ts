// The pulumi-resource-berth plugin: Pulumi's engine starts it with its own address as the argument and reads the
// port to dial from the first line of stdout.
import { createNativeRuntime } from "../../native";
import { berthProviders } from "../resources";
import { serveProvider } from "./server";

export async function main(): Promise<void> {
  const server = await serveProvider((config, programDir) =>
    berthProviders(createNativeRuntime({ root: config.root, runDir: config.runDir }), programDir),
  );
  process.stdout.write(`${server.port}\n`);
}
