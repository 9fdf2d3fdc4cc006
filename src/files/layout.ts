// Where things live on disk: state_dir/credentials/NAME/{archive,live}, runtime_dir/NAME.
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface CredentialPaths {
  root: string;
  archive: string;
  live: string;
  key(version: number): string;
  csr(version: number): string;
  cert(version: number): string;
  chain(version: number): string;
}

export function credentialPaths(stateDir: string, name: string): CredentialPaths {
  const root = join(stateDir, "credentials", name);
  const archive = join(root, "archive");
  return {
    root,
    archive,
    live: join(root, "live"),
    key: (n) => join(archive, `key-${n}.pem`),
    csr: (n) => join(archive, `csr-${n}.pem`),
    cert: (n) => join(archive, `cert-${n}.pem`),
    chain: (n) => join(archive, `chain-${n}.pem`),
  };
}

export function ensureCredentialDirs(p: CredentialPaths): void {
  mkdirSync(p.archive, { recursive: true, mode: 0o700 });
}

/** Highest N of any `*-N.pem` in archive/, so a version is never reused even after a crash. */
export function maxArchiveVersion(p: CredentialPaths): number {
  let max = 0;
  let names: string[] = [];
  try {
    names = readdirSync(p.archive);
  } catch {
    return 0;
  }
  for (const n of names) {
    const m = /^(?:key|csr|cert|chain)-(\d+)\.pem$/.exec(n);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max;
}
