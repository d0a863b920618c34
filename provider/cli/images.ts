// The image commands, in Docker's words: images, rmi, tag, pull, push, save, load, image prune, image inspect
// (each also as `image VERB`). An image a stack's Image resource made is not removed without --force.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import type { ImageInfo, Runtime } from "../../native/runtime";
import { eachName, list, needArgs, on, str, UsageError, type Command, type FlagSpec } from "./args";
import { ago, filters, formatFlag, printRows, humanSize, shortId } from "./format";
import { confirmPrune, guardRemoval, INSPECT_FORMAT, ownerColumn, printInspected, pruneFlags } from "./objects";

const FORMAT = formatFlag("Repository");
const QUIET: FlagSpec = { name: "quiet", short: "q", help: "print less (images: only image ids)" };

/** "127.0.0.1:5000/app:1" → ["127.0.0.1:5000/app", "1"]; a digest ref has no tag. */
export function splitRef(ref: string): [string, string] {
  const at = ref.indexOf("@");
  if (at >= 0) return [ref.slice(0, at), "<none>"];
  const colon = ref.lastIndexOf(":");
  return colon > ref.lastIndexOf("/") ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, "latest"];
}


/** The stored images a name means: a ref, or an id (full or a prefix of at least 4 hex digits). */
async function imagesNamed(rt: Runtime, name: string): Promise<ImageInfo[]> {
  const byRef = await rt.images.inspect(name).catch(() => undefined);
  if (byRef) return [byRef];
  const hex = name.replace(/^sha256:/, "");
  if (!/^[0-9a-f]{4,64}$/.test(hex)) return [];
  return (await rt.images.list()).filter((i) => i.id.replace(/^sha256:/, "").startsWith(hex));
}

/** Which containers use each image id. */
async function usersOfImages(rt: Runtime): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  for (const name of await rt.containers.list()) {
    const info = await rt.containers.inspect(name);
    if (info) users.set(info.imageId, [...(users.get(info.imageId) ?? []), name]);
  }
  return users;
}

/** A file argument, or a temporary copy of stdin (load) / a temporary file streamed to stdout afterwards (save). */
function scratch(): { file: string; done: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-image-"));
  return { file: path.join(dir, "image.tar"), done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export function imageCommands(runtime: () => Runtime): Command[] {
  const inspect: Command = {
    name: "image inspect",
    usage: "IMAGE...",
    summary: "Everything berth knows about images, as JSON.",
    flags: [INSPECT_FORMAT],
    async run(p) {
      const rt = runtime();
      const found = [];
      for (const n of needArgs(p, "image inspect", 1, true)) {
        const [info] = await imagesNamed(rt, n);
        if (!info) throw new Error(`No such image: ${n}`);
        found.push({ ...info, owner: await rt.owners.ownerOf("image", info.ref) });
      }
      printInspected(found, str(p, "format"));
      return 0;
    },
  };
  return [
    {
      name: "images",
      aliases: ["image ls", "image list"],
      usage: "[REPOSITORY[:TAG]]",
      summary: "List images (STACK: the project/stack whose Image made one).",
      flags: [
        { name: "all", short: "a", help: "accepted for Docker's sake: berth stores no intermediate images" },
        { name: "digests", help: "show the manifest digests" },
        { name: "filter", short: "f", value: "KEY=VALUE", repeat: true, help: "reference=PATTERN, label=KEY[=VALUE], dangling=true|false, before=IMAGE, since=IMAGE" },
        FORMAT,
        { name: "no-trunc", help: "full image ids" },
        QUIET,
      ],
      async run(p) {
        if (p.args.length > 1) needArgs(p, "images", 1);
        const rt = runtime();
        const f = filters(list(p, "filter"), ["reference", "label", "dangling", "before", "since"], "images");
        const stackOfImage = await ownerColumn(rt, "image");
        const all = await rt.images.list();
        const createdOf = async (ref: string) => Date.parse((await rt.images.inspect(ref))?.created ?? "") || 0;
        const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}$`);
        const refMatches = (ref: string, pattern: string) => {
          const [repo] = splitRef(ref);
          return glob(pattern).test(ref) || glob(pattern).test(repo);
        };
        const before = f.get("before")?.[0];
        const since = f.get("since")?.[0];
        const beforeTime = before ? await createdOf(before) : Infinity;
        const sinceTime = since ? await createdOf(since) : -Infinity;
        const shown = all
          .filter((i) => p.args.length === 0 || refMatches(i.ref, p.args[0]))
          .filter((i) => (f.get("reference") ?? []).every((r) => refMatches(i.ref, r)))
          .filter((i) => (f.get("label") ?? []).length === 0) // berth's image configs carry no labels
          .filter((i) => (f.get("dangling") ?? []).every((d) => d !== "true")) // every stored image has a name
          .filter((i) => {
            const t = Date.parse(i.created ?? "") || 0;
            return t < beforeTime && t > sinceTime;
          });
        const id = (i: ImageInfo) => (on(p, "no-trunc") ? i.id : shortId(i.id));
        if (on(p, "quiet")) {
          [...new Set(shown.map(id))].forEach((x) => console.log(x));
          return 0;
        }
        const rows = shown.map((i) => {
          const [Repository, Tag] = splitRef(i.ref);
          return {
            Repository,
            Tag,
            ID: id(i),
            Digest: i.manifestDigest,
            CreatedSince: i.created ? ago(i.created) : "N/A",
            CreatedAt: i.created ?? "",
            Size: humanSize(i.size),
            Stack: stackOfImage(i.ref),
          };
        });
        const columns = ["Repository", "Tag", ...(on(p, "digests") ? ["Digest"] : []), "ID", "CreatedSince", "Size", "Stack"];
        printRows(rows, {
          format: str(p, "format"),
          columns,
          headers: { Repository: "REPOSITORY", Tag: "TAG", Digest: "DIGEST", ID: "IMAGE ID", CreatedSince: "CREATED", CreatedAt: "CREATED AT", Size: "SIZE", Stack: "STACK" },
        });
        return 0;
      },
    },
    inspect,
    {
      name: "rmi",
      aliases: ["image rm", "image remove"],
      usage: "IMAGE...",
      summary: "Remove images (refused while a container uses one, or a stack owns it, without --force).",
      flags: [{ name: "force", short: "f", help: "remove it even though a container uses it or a stack owns it" }, { name: "no-prune", help: "accepted for Docker's sake: berth keeps no untagged parents" }],
      async run(p) {
        const rt = runtime();
        const force = on(p, "force");
        return eachName(needArgs(p, "rmi", 1, true), async (name) => {
          const found = await imagesNamed(rt, name);
          if (found.length === 0) throw new Error(`No such image: ${name}`);
          if (found.length > 1 && !force) {
            throw new Error(`conflict: unable to delete ${name} (must be forced) - image is referenced in multiple repositories: ${found.map((i) => i.ref).join(", ")}`);
          }
          // As Docker: a name may go while another names the same image; the last one not while a container uses it.
          const others = (await rt.images.list()).filter((i) => i.id === found[0].id && !found.some((f) => f.ref === i.ref));
          const users = (await usersOfImages(rt)).get(found[0].id) ?? [];
          if (users.length > 0 && others.length === 0 && !force) {
            throw new Error(`conflict: unable to remove repository reference "${name}" (must force) - container ${users[0]} is using its referenced image ${shortId(found[0].id)}`);
          }
          for (const info of found) {
            await guardRemoval(rt, "image", info.ref, force);
            await rt.images.remove(info.ref);
            await rt.owners.release("image", info.ref);
            console.log(`Untagged: ${info.ref}`);
          }
          if (!(await rt.images.list()).some((i) => i.id === found[0].id)) console.log(`Deleted: ${found[0].id}`);
        });
      },
    },
    {
      name: "tag",
      aliases: ["image tag"],
      usage: "SOURCE_IMAGE TARGET_IMAGE",
      summary: "Give an image another name.",
      async run(p) {
        const [source, target] = needArgs(p, "tag", 2);
        await runtime().images.tag(source, target);
        return 0;
      },
    },
    {
      name: "pull",
      aliases: ["image pull"],
      usage: "NAME[:TAG|@DIGEST]",
      summary: "Pull an image from a registry (credentials from ~/.docker/config.json; loopback registries over plain HTTP).",
      flags: [QUIET],
      async run(p) {
        const [ref] = needArgs(p, "pull", 1);
        const info = await runtime().images.pull(ref);
        if (!on(p, "quiet")) console.log(`Digest: ${info.manifestDigest}\nStatus: Downloaded image for ${info.ref}`);
        console.log(info.ref);
        return 0;
      },
    },
    {
      name: "push",
      aliases: ["image push"],
      usage: "NAME[:TAG]",
      summary: "Push an image to the registry its name names.",
      flags: [QUIET],
      async run(p) {
        const [ref] = needArgs(p, "push", 1);
        const digest = await runtime().images.push(ref, ref);
        console.log(on(p, "quiet") ? ref : `${ref}: digest: ${digest.split("@")[1]}`);
        return 0;
      },
    },
    {
      name: "save",
      aliases: ["image save"],
      usage: "IMAGE...",
      summary: "Write images to a tar (docker save archive and OCI layout in one), to stdout or -o FILE.",
      flags: [{ name: "output", short: "o", value: "FILE", help: "write to this file instead of stdout" }],
      async run(p) {
        const refs = needArgs(p, "save", 1, true);
        const out = str(p, "output");
        if (out) {
          await runtime().images.save(refs, path.resolve(out));
          return 0;
        }
        if (process.stdout.isTTY) throw new UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect", "");
        const tmp = scratch();
        try {
          await runtime().images.save(refs, tmp.file);
          await pipeline(fs.createReadStream(tmp.file), process.stdout, { end: false });
        } finally {
          tmp.done();
        }
        return 0;
      },
    },
    {
      name: "load",
      aliases: ["image load"],
      summary: "Load the images of a tar (docker save or OCI layout) from stdin or -i FILE, under the names it holds.",
      flags: [{ name: "input", short: "i", value: "FILE", help: "read this file instead of stdin" }, QUIET],
      async run(p) {
        needArgs(p, "load", 0);
        const input = str(p, "input");
        const tmp = input ? undefined : scratch();
        try {
          if (tmp) {
            if (process.stdin.isTTY) throw new UsageError("requested load from stdin, but stdin is empty: use -i FILE or redirect", "");
            await pipeline(process.stdin, fs.createWriteStream(tmp.file));
          }
          for (const info of await runtime().images.load(input ? path.resolve(input) : tmp!.file)) console.log(`Loaded image: ${info.ref}`);
        } finally {
          tmp?.done();
        }
        return 0;
      },
    },
    {
      name: "image prune",
      summary: "With --all, remove every image no container uses and no stack owns.",
      flags: pruneFlags("every unused image (without it there is nothing to prune: berth keeps no dangling images)"),
      async run(p) {
        confirmPrune(p, "image prune", "all images without at least one container associated to them and owned by no stack");
        const rt = runtime();
        const [owned, users] = [await rt.owners.list("image"), await usersOfImages(rt)];
        const candidates = on(p, "all") ? (await rt.images.list()).filter((i) => !owned.has(i.ref) && !users.has(i.id)) : [];
        const lines: string[] = [];
        for (const info of candidates) {
          await rt.images.remove(info.ref);
          lines.push(`untagged: ${info.ref}`);
        }
        const left = new Set((await rt.images.list()).map((i) => i.id));
        for (const id of new Set(candidates.map((i) => i.id))) if (!left.has(id)) lines.push(`deleted: ${id}`);
        if (lines.length > 0) console.log(`Deleted Images:\n${lines.join("\n")}`);
        return 0;
      },
    },
  ];
}
