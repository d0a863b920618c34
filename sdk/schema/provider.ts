import { z } from "zod";
import { absolutePath } from "./fields";

/** A berth provider's configuration: `berth:*` stack config for the default provider, or `new berth.Provider(...)`. */
export const ProviderArgs = z.strictObject({
  /** Where berth keeps images, volumes and container records on the host (default $BERTH_ROOT or /var/lib/berth). */
  root: absolutePath.optional(),
  /** Volatile host-wide state such as published-port claims (default $BERTH_RUN or /run/berth). */
  runDir: absolutePath.optional(),
});
