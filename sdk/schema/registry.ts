import { z } from "zod";
import { ipv4, objectName, port, replaces } from "./fields";

export const RegistryUserArgs = z.strictObject({
  /** The user's login name. */
  username: z.string().regex(/^[^:\s]+$/, { error: "must be a user name without ':' or spaces" }),
  /** Pass it as a Pulumi secret. berth stores only its bcrypt hash (passwordHash), never the password. */
  password: z.string().min(1, { error: "must not be empty" }).optional(),
  /** berth fills it in from password. */
  passwordHash: z.string().regex(/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/, { error: "must be a bcrypt hash" }).optional(),
});

export const RegistryArgs = z
  .strictObject({
    /** Host-wide registry name; berth picks "<resource name>-<random>" when omitted. */
    name: replaces(objectName.optional()),
    /** Host address to listen on (default "127.0.0.1"). */
    address: replaces(ipv4.optional()),
    /** Host port to listen on. */
    port: replaces(port),
    /** A berth Volume holding the registry's data: it outlives the registry being replaced or deleted. */
    volume: replaces(objectName),
    /** htpasswd users; without any, the registry needs no login. Changed in place (the registry restarts). */
    users: z.array(RegistryUserArgs).optional(),
    /** Serve HTTPS with this certificate and key (PEM files, relative to the program's directory). */
    tls: replaces(
      z.strictObject({
        /** PEM certificate file. */
        certificate: z.string().min(1),
        /** PEM private key file of the certificate. */
        key: z.string().min(1),
      }).optional(),
    ),
  })
  .check((ctx) => {
    for (const [i, u] of (ctx.value.users ?? []).entries()) {
      if (u.password === undefined && u.passwordHash === undefined) {
        ctx.issues.push({ code: "custom", input: u, path: ["users", i, "password"], message: `user "${u.username}" needs a password` });
      }
    }
  });

export const RegistryOutputs = z.object({
  name: z.string(),
  /** "http://127.0.0.1:5000" (https with tls). */
  url: z.string(),
  /** "127.0.0.1:5000": prefix image names with it to push there. */
  endpoint: z.string(),
  /** "running", or what refresh found (the next up restarts it). */
  status: z.string(),
});
