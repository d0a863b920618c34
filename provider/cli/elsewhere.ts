// A day-2 command given a stack's resource name that names nothing on the machine it acts on (this one, or the one
// -H/$BERTH_HOST names): when the stack's state says that resource was made through a provider on another machine
// (or another root), the command goes there when no host was given, and is refused naming where it is and how to
// reach it when -H/$BERTH_HOST named another — rather than "No such container", or acting on another object of
// that name here.
import * as path from "node:path";
import { openStack } from "../engine/commands";
import { parseUrn } from "../engine/urn";
import { checkProviderConfig, PROVIDER_TYPE, redact, secretHostTexts, type ProviderConfig } from "../resources";
import { openRuntime, targetOf, THIS_MACHINE } from "../runtimes";
import type { DeploymentV3 } from "../state/checkpoint";

/**
 * The stack's state as a day-2 command reads it: writing nothing (a day-2 command changes no stack file, not even
 * Pulumi.<stack>.yaml's salt); undefined when berth cannot read it (no passphrase for its secrets).
 */
export function stackState(scope: { dir: string; stack: string }): DeploymentV3 | undefined {
  try {
    return openStack(path.resolve(scope.dir), scope.stack, openRuntime, { readOnly: true }).store.load();
  } catch {
    return undefined;
  }
}

/**
 * Where the stack's state (stackState, read once per command) places resource `name` (of `type`) when that is not
 * where the command acts (`here`): its provider's configuration, and why it is not found here, naming where it is;
 * undefined when the state does not place it elsewhere (no state, no such resource, or its provider record
 * unreadable): the name is then looked up as given.
 */
export function elsewhere(state: DeploymentV3 | undefined, scope: { stack: string }, type: string, name: string, here: ProviderConfig, command: string): { config: ProviderConfig; why: string } | undefined {
  if (!state) return undefined;
  const res = state.resources.find((r) => r.type === type && !r.delete && parseUrn(r.urn).name === name);
  if (!res?.provider) return undefined;
  const at = res.provider.lastIndexOf("::");
  const provider = state.resources.find((r) => r.type === PROVIDER_TYPE && r.urn === res.provider!.slice(0, at) && r.id === res.provider!.slice(at + 2));
  if (!provider) return undefined;
  const { config, failures } = checkProviderConfig(provider.inputs);
  if (failures.length > 0) return undefined;
  const [there, ours] = [targetOf(config), targetOf(here)];
  if (there.root === ours.root) return undefined;
  const providerName = parseUrn(provider.urn).name;
  // A secret host is named by its provider only, as the engine's messages do.
  const hide = (message: string) => redact(message, new Map(secretHostTexts(provider.inputs, `[secret host of provider ${providerName}]`)));
  const what = `${type.split(":").pop()!.toLowerCase()} ${name} of stack ${scope.stack} (provider ${providerName})`;
  const where = config.host ? config.host : THIS_MACHINE;
  const rootNote = config.root ? ` (berth root ${config.root})` : "";
  const on = here.host ? `${here.host}, which -H/BERTH_HOST names` : THIS_MACHINE;
  if (there.machine !== ours.machine) {
    const fix = config.host ? `berth -H ${config.host} ${command}, or with no -H nor BERTH_HOST (berth then goes where the stack says)` : `drop -H and unset BERTH_HOST (berth then goes where the stack says)`;
    return { config, why: hide(`${what} is on ${where}${rootNote}, not on ${on}: ${fix}`) };
  }
  const fix = "drop -H and unset BERTH_HOST (berth then goes where the stack says)";
  return { config, why: hide(`${what} is in berth root ${config.root ?? "(the default)"} on ${where}, not in the one ${on} uses: ${fix}`) };
}
