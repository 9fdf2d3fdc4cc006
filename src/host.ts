// The name this host goes by on a shared store (hosts table, per-host tokens): CREDD_HOST_NAME when
// set (machines or containers that share a host name), else the machine's host name.
import { hostname } from "node:os";

export function hostNameOf(env: NodeJS.ProcessEnv = process.env): string {
  return env.CREDD_HOST_NAME?.trim() || hostname();
}
