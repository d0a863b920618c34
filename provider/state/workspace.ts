// The stack `stack select` chose for a project, kept where the Pulumi CLI keeps it so that `pulumi stack select`
// and `berth stack select` agree: PULUMI_HOME (default ~/.pulumi)/workspaces/<project>-<sha1 of the Pulumi.yaml
// path>-workspace.json, `{"stacks": {"<backend URL>": "organization/<project>/<stack>"}}`.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

interface WorkspaceFile {
  stacks?: Record<string, string>;
  /** Older Pulumi CLIs: one selected stack. */
  stack?: string;
  [other: string]: unknown;
}

function workspaceFile(projectDir: string, project: string): string {
  const home = process.env.PULUMI_HOME || path.join(os.homedir(), ".pulumi");
  const hash = createHash("sha1").update(path.join(path.resolve(projectDir), "Pulumi.yaml")).digest("hex");
  return path.join(home, "workspaces", `${project}-${hash}-workspace.json`);
}

function read(file: string): WorkspaceFile {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as WorkspaceFile;
  } catch {
    return {};
  }
}

/** The selected stack for this backend (file://DIR), if any. */
export function selectedStack(projectDir: string, project: string, backendDir: string): string | undefined {
  const doc = read(workspaceFile(projectDir, project));
  const chosen = doc.stacks?.[`file://${backendDir}`] ?? doc.stack;
  return chosen?.split("/").at(-1);
}

export function selectStack(projectDir: string, project: string, backendDir: string, stack: string | undefined): void {
  const file = workspaceFile(projectDir, project);
  const doc = read(file);
  const stacks = { ...doc.stacks };
  if (stack === undefined) delete stacks[`file://${backendDir}`];
  else stacks[`file://${backendDir}`] = `organization/${project}/${stack}`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify({ ...doc, stacks }, null, 4)}\n`);
}
