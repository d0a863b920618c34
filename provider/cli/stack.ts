// `berth config set|get` and `berth stack output`: reading and editing a stack without running its program.
import * as fs from "node:fs";
import { openStack } from "../engine/commands";
import { dotGraph } from "../engine/review";
import { mask, show } from "../engine/display";
import { STACK_TYPE } from "../engine/urn";
import { revealAll } from "../values";
import { type Flags, runtimeFor } from "./berth";

export async function stackCommand(flags: Flags): Promise<number> {
  const [sub, ...rest] = flags.args;
  const ctx = () => openStack(flags.dir, flags.stack, runtimeFor, { backend: flags.backend });
  const need = (n: number, usage: string) => {
    if (rest.length !== n) throw new Error(`usage: berth ${usage}`);
    return rest;
  };
  switch (`${flags.command} ${sub ?? ""}`) {
    case "config set": {
      const [key, value] = need(2, "config set KEY VALUE [--secret]");
      ctx().settings.set(key, value, flags.secret);
      return 0;
    }
    case "config get": {
      const [key] = need(1, "config get KEY");
      const { settings, config } = ctx();
      const value = config.values[settings.qualify(key)];
      if (value === undefined) throw new Error(`configuration key '${key}' not found for stack '${flags.stack}'`);
      console.log(value);
      return 0;
    }
    case "stack output": {
      const outputs = ctx().store.load().resources.find((r) => r.type === STACK_TYPE && !r.delete)?.outputs ?? {};
      const shown = flags.showSecrets ? (revealAll(outputs) as Record<string, unknown>) : mask(outputs);
      if (rest.length > 1) throw new Error("usage: berth stack output [NAME]");
      if (rest.length === 1) {
        if (!(rest[0] in shown)) throw new Error(`current stack does not have output property '${rest[0]}'`);
        const value = shown[rest[0]];
        console.log(flags.json ? JSON.stringify(value, null, 2) : typeof value === "string" ? value : show(value));
        return 0;
      }
      if (flags.json) console.log(JSON.stringify(shown, null, 2));
      else for (const [k, v] of Object.entries(shown)) console.log(`    ${k.padEnd(20)} ${typeof v === "string" ? v : show(v)}`);
      return 0;
    }
    case "stack graph": {
      const dot = dotGraph(ctx().store.load());
      if (rest.length > 1) throw new Error("usage: berth stack graph [FILE]");
      if (rest[0]) fs.writeFileSync(rest[0], dot);
      else process.stdout.write(dot);
      return 0;
    }
    default:
      throw new Error(`unknown command "berth ${flags.command} ${sub ?? ""}": use config set|get, stack output or stack graph`);
  }
}
