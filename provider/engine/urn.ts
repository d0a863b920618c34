// Pulumi URNs: urn:pulumi:<stack>::<project>::<qualified type>::<name>, the qualified type carrying the types of
// the parents below the stack ("my:Component$berth:index:Container").

export const STACK_TYPE = "pulumi:pulumi:Stack";

export function makeUrn(stack: string, project: string, type: string, name: string, parent?: string): string {
  const parentType = parent ? parseUrn(parent).qualifiedType : undefined;
  const qualifiedType = parentType && parentType !== STACK_TYPE ? `${parentType}$${type}` : type;
  return `urn:pulumi:${stack}::${project}::${qualifiedType}::${name}`;
}

export function parseUrn(urn: string): { stack: string; project: string; qualifiedType: string; type: string; name: string } {
  const [head, project, qualifiedType, ...rest] = urn.split("::");
  const types = (qualifiedType ?? "").split("$");
  return {
    stack: head.replace(/^urn:pulumi:/, ""),
    project,
    qualifiedType,
    type: types[types.length - 1],
    name: rest.join("::"),
  };
}
