// ZIP attachments, opened with fflate as a stream so every cap is enforced while inflating: a ZIP
// bomb is cut off at the cap, never inflated whole. Entry names are only labels (never a path:
// nothing is written to disk); certificate-like entries become files for the ingest.
import { Unzip, UnzipInflate, type UnzipFile } from "fflate";
import type { InputFile } from "../core/ingest.js";
import type { StopReason } from "./ops-mail.js";
import { attachmentKind } from "./reply.js";

export const ZIP_CAPS = {
  /** Entries (files) in one archive. */
  entries: 32,
  /** Inflated bytes of one entry: a certificate bundle is a few KiB. */
  entryBytes: 1024 * 1024,
  /** Inflated bytes of the whole archive. */
  totalBytes: 4 * 1024 * 1024,
  /** Inflated / compressed bytes of an entry, past its first 64 KiB. */
  ratio: 100,
} as const;

const RATIO_GRACE = 64 * 1024;

export function unzipCertificates(name: string, bytes: Buffer, credential: string, caps = ZIP_CAPS): { files: InputFile[]; stops: StopReason[] } {
  const files: InputFile[] = [];
  const stops: StopReason[] = [];
  const fix = `open ${name} yourself, check what it holds, and run \`credd ingest ${credential} FILE...\` with the certificates in it`;
  let entries = 0;
  let total = 0;
  let stopped: string | undefined;
  const stop = (why: string) => {
    stopped ??= why;
  };
  const uz = new Unzip();
  uz.register(UnzipInflate);
  uz.onfile = (f: UnzipFile) => {
    if (stopped) return;
    if (f.name.endsWith("/")) return; // a folder entry
    const label = `${name}/${
      f.name
        .replace(/^.*[\\/]/, "")
        .replace(/[\u0000-\u001f\u007f]/g, "_")
        .slice(0, 200) || "entry"
    }`;
    if (/(^|\/)(__MACOSX\/|\._)/.test(f.name)) return; // macOS metadata beside each entry
    if (++entries > caps.entries) return stop(`${name} holds more than ${caps.entries} entries`);
    if (f.originalSize !== undefined && f.originalSize > caps.entryBytes) {
      return stop(`${label} would inflate to ${f.originalSize} bytes, more than the ${caps.entryBytes} bytes a certificate file may have`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    f.ondata = (err, data, final) => {
      if (stopped) return;
      if (err) {
        stop(`${label} cannot be inflated (${err.message})`);
        f.terminate();
        return;
      }
      size += data.length;
      total += data.length;
      const packed = f.size ?? bytes.length;
      if (size > caps.entryBytes) {
        stop(`${label} inflates to more than ${caps.entryBytes} bytes, more than a certificate file may have (a ZIP bomb?)`);
      } else if (total > caps.totalBytes) {
        stop(`${name} inflates to more than ${caps.totalBytes} bytes in all (a ZIP bomb?)`);
      } else if (size > RATIO_GRACE && size > packed * caps.ratio) {
        stop(`${label} inflates more than ${caps.ratio} times its packed size (a ZIP bomb?)`);
      }
      if (stopped) {
        f.terminate();
        return;
      }
      chunks.push(Buffer.from(data));
      if (final) {
        const content = Buffer.concat(chunks);
        if (/\.zip$/i.test(f.name)) {
          stops.push({ why: `${label} is a ZIP inside the ZIP, which credd does not open`, fix });
          return;
        }
        const kind = attachmentKind({ name: f.name, contentType: "", content });
        if (kind === "certificate" || content.includes("-----BEGIN ")) files.push({ name: label, bytes: content });
      }
    };
    try {
      f.start();
    } catch (err) {
      stop(`${label} cannot be opened (${(err as Error).message}; an encrypted ZIP, or a compression credd does not know)`);
    }
  };
  try {
    uz.push(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), true);
  } catch (err) {
    stop(`${name} is not a ZIP archive credd can read (${(err as Error).message})`);
  }
  if (stopped) return { files: [], stops: [{ why: stopped, fix }] };
  if (files.length === 0 && stops.length === 0) stops.push({ why: `${name} holds no certificate file (PEM, DER or PKCS#7)`, fix });
  return { files, stops };
}
