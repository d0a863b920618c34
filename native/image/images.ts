// The runtime's image service: the content store plus what makes and moves images — the builder, registry
// transfers and archives — behind the ImageStore seam.
import type { BuildCachePruneOptions, BuildCachePruneResult, BuildImageRequest, BuildImageResult, ImageInfo, ImageStore, ImportRootfsRequest, RegistryAccess } from "../runtime";
import type { Host } from "../host/exec";
import { Builder } from "../build/builder";
import type { StepNetworks } from "../build/network";
import { pruneBuildCache } from "../build/prune";
import { namesRegistry, parseRegistryRef } from "../registry/reference";
import { pull, push, resolveDigest } from "../registry/transfer";
import type { RegistryOptions } from "../registry/client";
import { archiveNames, importArchive, saveImages } from "./archive";
import { nameRef } from "./oci";
import type { ContentStore } from "./store";

export class NativeImages implements ImageStore {
  private readonly builder: Builder;

  constructor(
    host: Host,
    private readonly store: ContentStore,
    networks?: StepNetworks,
  ) {
    this.builder = new Builder(host, store, {
      // A base image missing from the store is pulled when its ref names a registry.
      resolveBase: async (ref, registryAuth) => {
        if (!namesRegistry(ref)) return undefined;
        const registry = parseRegistryRef(ref).registry;
        const access = registryAuth ? { askAuth: () => registryAuth(registry) } : {};
        const info = await this.pull(ref, access);
        return this.store.image(info.ref);
      },
      networks,
    });
  }

  importRootfs = (req: ImportRootfsRequest): Promise<ImageInfo> => this.store.importRootfs(req);
  importArchive = (req: { ref: string; path: string }): Promise<ImageInfo> =>
    this.store.leased(() => importArchive(this.store, req.path, nameRef(req.ref)));
  inspect = (refOrId: string): Promise<ImageInfo | undefined> => this.store.inspect(refOrId);
  remove = (ref: string): Promise<void> => this.store.remove(ref);
  hold = (ref: string): Promise<void> => this.store.hold(ref);
  tag = (source: string, ref: string): Promise<ImageInfo> => this.store.tag(source, ref);
  save = (refs: string[], file: string): Promise<void> => saveImages(this.store, refs, file);

  async list(): Promise<ImageInfo[]> {
    const infos = await Promise.all((await this.store.refs()).map((r) => this.store.inspect(r)));
    return infos.filter((i): i is ImageInfo => i !== undefined);
  }

  async load(file: string): Promise<ImageInfo[]> {
    const names = await archiveNames(file);
    if (names.length === 0) throw new Error(`${file} names no image: load it as an Image resource's archive with a name instead`);
    const loaded: ImageInfo[] = [];
    for (const ref of names) loaded.push(await this.importArchive({ ref, path: file }));
    return loaded;
  }

  pull = (ref: string, access: RegistryOptions = {}, localRef?: string): Promise<ImageInfo> =>
    this.store.leased(() => pull(this.store, ref, access, nameRef(localRef ?? ref.split("@")[0])));
  resolve = (ref: string, access: RegistryAccess = {}): Promise<string> => resolveDigest(ref, access);

  async push(source: string, target: string, access: RegistryAccess = {}): Promise<string> {
    return (await push(this.store, source, target, access)).repoDigest;
  }

  pruneBuildCache = (opts: BuildCachePruneOptions): Promise<BuildCachePruneResult> => pruneBuildCache(this.store, opts);

  build(req: BuildImageRequest): Promise<BuildImageResult> {
    const { ref, ...rest } = req;
    return this.builder.build({ ...rest, tags: [ref] });
  }
}
