// Pulumi's file-backend checkpoint (version 3), the shapes berth reads and writes. A stack berth deployed is a
// stack the Pulumi CLI can read, and the other way round.
import { createHash } from "node:crypto";
import type { PropertyMap } from "../resources/provider";

export interface ResourceState {
  urn: string;
  custom: boolean;
  /** Set on an old resource kept until its replacement's old copy is deleted. */
  delete?: boolean;
  id?: string;
  type: string;
  inputs: PropertyMap;
  outputs: PropertyMap;
  parent?: string;
  protect?: boolean;
  dependencies?: string[];
  /** "<provider URN>::<provider id>" */
  provider?: string;
  propertyDependencies?: Record<string, string[]>;
  retainOnDelete?: boolean;
  ignoreChanges?: string[];
  replaceOnChanges?: string[];
  additionalSecretOutputs?: string[];
  customTimeouts?: CustomTimeouts;
  deletedWith?: string;
  aliases?: string[];
  /** The id this resource was imported with. */
  importID?: string;
  created?: string;
  modified?: string;
}

/** Seconds each operation may take, as Pulumi records them. */
export interface CustomTimeouts {
  create?: number;
  update?: number;
  delete?: number;
}

export type OperationType = "creating" | "updating" | "deleting" | "reading";

export interface PendingOperation {
  resource: ResourceState;
  type: OperationType;
}

export interface DeploymentV3 {
  manifest: { time: string; magic: string; version: string };
  secrets_providers?: { type: string; state?: unknown };
  resources: ResourceState[];
  pending_operations?: PendingOperation[];
}

export interface CheckpointFile {
  version: 3;
  checkpoint: {
    stack: string;
    config?: Record<string, unknown>;
    latest: DeploymentV3;
  };
}

export const BERTH_VERSION: string = require("berth-iac/package.json").version;

const magics = new Map<string, string>();

/** Pulumi's manifest magic: the sha256 of the version that wrote the deployment (made once per version: per step). */
export function manifest(version = `berth-${BERTH_VERSION}`): DeploymentV3["manifest"] {
  let magic = magics.get(version);
  if (magic === undefined) magics.set(version, (magic = createHash("sha256").update(version).digest("hex")));
  return { time: new Date().toISOString(), magic, version };
}

export function emptyDeployment(): DeploymentV3 {
  return { manifest: manifest(), resources: [] };
}
