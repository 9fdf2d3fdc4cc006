// Switches live/ to a new certificate version in one atomic rename of a symlink, never a mixed pair.
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { fsyncDir, writeFileAtomic } from "./atomic.js";
import type { CredentialPaths } from "./layout.js";

export interface LiveFiles {
  keyPem: string;
  certPem: string;
  /** Intermediates and CA, PEM, may be empty. */
  chainPem: string;
  /** live/bundle.p12, when a PKCS#12 password is configured. */
  pkcs12?: Buffer;
}

const versionDir = (p: CredentialPaths, version: number) => join(p.root, `.live-${version}`);

/**
 * Writes `.live-N/` completely (fsync'd), then points the `live` symlink at it with rename(2):
 * a reader sees either the old folder or the new one, so cert.pem and key.pem always match.
 */
export function switchLive(p: CredentialPaths, version: number, files: LiveFiles): void {
  const dir = versionDir(p, version);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const chain = files.chainPem.trim() ? ensureNl(files.chainPem) : "";
  writeFileAtomic(join(dir, "key.pem"), ensureNl(files.keyPem), 0o600);
  writeFileAtomic(join(dir, "cert.pem"), ensureNl(files.certPem), 0o644);
  writeFileAtomic(join(dir, "chain.pem"), chain, 0o644);
  writeFileAtomic(join(dir, "fullchain.pem"), ensureNl(files.certPem) + chain, 0o644);
  if (files.pkcs12) writeFileAtomic(join(dir, "bundle.p12"), files.pkcs12, 0o600);
  fsyncDir(dir);

  const tmp = join(p.root, `.live.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  symlinkSync(basename(dir), tmp);
  renameSync(tmp, p.live);
  fsyncDir(p.root);
  pruneLiveDirs(p, version);
}

/** The version `live` points at, or undefined when there is none. */
export function liveVersion(p: CredentialPaths): number | undefined {
  if (!existsSync(p.live)) return undefined;
  if (!lstatSync(p.live).isSymbolicLink()) return undefined;
  const m = /^\.live-(\d+)$/.exec(readlinkSync(p.live));
  return m ? Number(m[1]) : undefined;
}

/** Keeps the live folder and the one before it (for a quick look back); archive/ keeps everything. */
function pruneLiveDirs(p: CredentialPaths, current: number): void {
  const dirs = readdirSync(p.root)
    .map((n) => /^\.live-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .filter((v) => v !== current)
    .sort((a, b) => b - a);
  for (const v of dirs.slice(1)) rmSync(versionDir(p, v), { recursive: true, force: true });
}

function ensureNl(s: string): string {
  return s.endsWith("\n") ? s : `${s}\n`;
}
