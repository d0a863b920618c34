// `berth new [DIR]`: a project skeleton as `pulumi new typescript` writes it (Pulumi.yaml, package.json, tsconfig,
// index.ts, .gitignore), its program a first container, and the base image that program starts from: a busybox
// root filesystem made from the host's static busybox by the script the package ships.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { on, str, UsageError, type Command } from "./args";

const PKG_DIR = path.dirname(require.resolve("berth-iac/package.json"));
const PKG: { name: string; version: string; dependencies: Record<string, string>; peerDependencies: Record<string, string> } = require("berth-iac/package.json");
/** The rootfs maker shipped in the package (files: scripts/busybox-rootfs.sh). */
export const BUSYBOX_ROOTFS = path.join(PKG_DIR, "scripts", "busybox-rootfs.sh");
const ROOTFS = "busybox-rootfs.tar";

export interface NewOptions {
  name?: string;
  description?: string;
  /** Write into a directory that is not empty (files of the skeleton are overwritten). */
  force?: boolean;
}

/** Pulumi's rule for project names. */
const PROJECT_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/** A project name as the start of an image name (lower case, starting with a letter or digit). */
const imageName = (name: string) => name.toLowerCase().replace(/^[^a-z0-9]+/, "") || "berth";

const program = (name: string) => `import * as pulumi from "@pulumi/pulumi";
import * as berth from "${PKG.name}";

const config = new pulumi.Config();
const port = config.getNumber("port") ?? 8080;

// The base image: a busybox root filesystem (berth new made ${ROOTFS};
// node_modules/${PKG.name}/scripts/busybox-rootfs.sh OUT.tar makes another).
const base = new berth.Image("base", {
  name: "${imageName(name)}-base:latest",
  rootfs: { tarball: "${ROOTFS}" },
  config: { cmd: ["sh"], env: ["PATH=/bin"], workdir: "/", exposedPorts: ["80/tcp"] },
});

const site = new berth.Volume("site", {});

const web = new berth.Container("web", {
  image: base.imageId,
  volumes: [{ volume: site.name, target: "/www" }],
  command: ["sh", "-c", 'test -f /www/index.html || echo "<h1>Hello from berth</h1>" > /www/index.html; exec httpd -f -p 80 -h /www'],
  ports: [{ containerPort: 80, hostPort: port, hostIp: "127.0.0.1" }],
  stopTimeout: 1,
});

export const url = pulumi.interpolate\`http://127.0.0.1:\${port}/\`;
export const container = web.name;
`;

/** The files of the skeleton, by name. */
export function skeleton(name: string, description: string): Record<string, string> {
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return {
    "Pulumi.yaml": `name: ${name}\ndescription: ${JSON.stringify(description)}\nruntime:\n  name: nodejs\n  options:\n    packagemanager: npm\nmain: index.ts\n`,
    "package.json": json({
      name,
      main: "index.ts",
      dependencies: { "@pulumi/pulumi": PKG.peerDependencies["@pulumi/pulumi"], [PKG.name]: `^${PKG.version}` },
      devDependencies: { "@types/node": ">=20", typescript: PKG.dependencies.typescript },
    }),
    // Pulumi's template, with Node's own module resolution (TypeScript 6 deprecates "node", 7 drops it).
    "tsconfig.json": json({
      compilerOptions: {
        strict: true,
        outDir: "bin",
        target: "es2020",
        module: "nodenext",
        moduleResolution: "nodenext",
        sourceMap: true,
        experimentalDecorators: true,
        pretty: true,
        noFallthroughCasesInSwitch: true,
        noImplicitReturns: true,
        forceConsistentCasingInFileNames: true,
      },
      files: ["index.ts"],
    }),
    "index.ts": program(name),
    ".gitignore": "/bin/\n/node_modules/\n",
  };
}

/** Writes the skeleton and the base image's tarball into dir; returns what to run next. */
export function newProject(dir: string, opts: NewOptions = {}): string {
  const name = opts.name ?? path.basename(path.resolve(dir));
  if (!PROJECT_NAME.test(name)) {
    throw new Error(`"${name}" is not a valid project name: use letters, digits, "_", "." and "-" (--name NAME)`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const present = fs.readdirSync(dir);
  if (present.length > 0 && !opts.force) throw new Error(`${dir} is not empty (${present.slice(0, 3).join(", ")}…); use --force to write into it`);
  for (const [file, text] of Object.entries(skeleton(name, opts.description ?? "A berth program"))) fs.writeFileSync(path.join(dir, file), text);
  const tarball = path.join(dir, ROOTFS);
  try {
    execFileSync(BUSYBOX_ROOTFS, [tarball], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  } catch (err) {
    const why = String((err as { stderr?: string }).stderr || err).trim();
    throw new Error(`the project is written but not its base image: ${why}
then run: ${BUSYBOX_ROOTFS} ${tarball}`);
  }
  return `Created project '${name}' in ${dir}.\n\nNext:\n  cd ${dir}\n  npm install\n  npx berth up`;
}

/** `berth new [DIR]`, declared as every command is (args.ts). */
export const newCommand: Command = {
  name: "new",
  usage: "[DIR]",
  summary: "Write a TypeScript project for berth (as pulumi new typescript does) and its first image's busybox rootfs.",
  flags: [
    { name: "name", short: "n", value: "NAME", help: "the project name (default: the directory's name)" },
    { name: "description", short: "d", value: "TEXT", help: "the project description" },
    { name: "force", short: "f", help: "write into a directory that is not empty" },
  ],
  async run(p) {
    if (p.args.length > 1) throw new UsageError(`unexpected argument ${p.args[1]}`, "See 'berth new --help'.");
    console.log(newProject(p.args[0] ?? ".", { name: str(p, "name"), description: str(p, "description"), force: on(p, "force") }));
    return 0;
  },
};
