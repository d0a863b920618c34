// Which backend holds a stack, found as the Pulumi CLI finds it: --backend, then PULUMI_BACKEND_URL, then the
// project's `backend.url`, then the URL `pulumi login` stored. Only file backends (`file://DIR`, whose stacks live
// in DIR/.pulumi) are berth's; with none named, berth keeps the state in the project directory.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface BackendChoice {
  /** Directory holding `.pulumi/`. */
  dir: string;
  /** Where the choice came from, for messages. */
  source: "--backend" | "PULUMI_BACKEND_URL" | "Pulumi.yaml" | "pulumi login" | "project directory";
}

export function chooseBackend(opts: {
  flag?: string;
  projectUrl?: string;
  projectDir: string;
  env?: NodeJS.ProcessEnv;
}): BackendChoice {
  const env = opts.env ?? process.env;
  const named: Array<[BackendChoice["source"], string | undefined]> = [
    ["--backend", opts.flag],
    ["PULUMI_BACKEND_URL", env.PULUMI_BACKEND_URL],
    ["Pulumi.yaml", opts.projectUrl],
    ["pulumi login", storedLogin(env)],
  ];
  for (const [source, url] of named) if (url) return { dir: fileBackendDir(url, source), source };
  return { dir: opts.projectDir, source: "project directory" };
}

/** `file://~/x`, `file:///abs`, `file://rel` (against the working directory), query parameters ignored. */
function fileBackendDir(url: string, source: string): string {
  if (!url.startsWith("file://")) {
    throw new Error(`the backend ${url} (from ${source}) is not a file backend; berth keeps state only in file:// backends (e.g. file://~ or file:///var/lib/berth-state)`);
  }
  let dir = url.slice("file://".length).split("?")[0];
  if (dir === "~" || dir.startsWith("~/")) dir = path.join(os.homedir(), dir.slice(2));
  return path.resolve(dir);
}

/** The `current` URL of `pulumi login` (PULUMI_HOME/credentials.json, default ~/.pulumi). */
function storedLogin(env: NodeJS.ProcessEnv): string | undefined {
  const home = env.PULUMI_HOME || path.join(os.homedir(), ".pulumi");
  try {
    return JSON.parse(fs.readFileSync(path.join(home, "credentials.json"), "utf8")).current || undefined;
  } catch {
    return undefined;
  }
}
