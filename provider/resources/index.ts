import type { Runtime } from "../../native/runtime";
import { containerKind } from "./container";
import { imageKind } from "./image";
import { KindProvider } from "./kind";
import { networkKind } from "./network";
import type { Provider } from "./provider";
import { volumeKind } from "./volume";
import { registryKind } from "./registry";

/** berth's provider for each resource type token, over one runtime. `cwd` anchors relative paths in inputs. */
export function berthProviders(runtime: Runtime, cwd: string): Map<string, Provider> {
  return new Map<string, Provider>([
    ["berth:index:Image", new KindProvider("berth:index:Image", imageKind(runtime, cwd))],
    ["berth:index:Network", new KindProvider("berth:index:Network", networkKind(runtime))],
    ["berth:index:Volume", new KindProvider("berth:index:Volume", volumeKind(runtime))],
    ["berth:index:Container", new KindProvider("berth:index:Container", containerKind(runtime))],
    ["berth:index:Registry", new KindProvider("berth:index:Registry", registryKind(runtime, cwd))],
  ]);
}
