// Links in a reply: an https URL whose host is on mailbox.download_hosts is fetched with a
// deadline and a size cap, redirects followed only while they stay https and on the list, the
// server checked against the system roots plus stellantis.ca_file. What comes back is a file for
// the ingest, or the reason credd stopped (a login page, 401/403, not a certificate).
import { request } from "node:https";
import { rootCertificates } from "node:tls";
import { readFileSync } from "node:fs";
import type { CredentialConfig, MailboxConfig } from "../config/types.js";
import type { InputFile } from "../core/ingest.js";
import { errorMessage } from "../errors.js";
import type { StopReason } from "./ops-mail.js";
import { linkAllowed } from "./reply.js";

export const DOWNLOAD_CAPS = { bytes: 1024 * 1024, timeoutMs: 30_000, redirects: 3 } as const;

export interface DownloadOptions {
  /** Extra CA certificates (PEM) trusted beside the system roots. */
  ca?: string;
  caps?: { bytes: number; timeoutMs: number; redirects: number };
}

interface Response {
  status: number;
  location?: string;
  contentType: string;
  body: Buffer;
}

function fetchOnce(url: URL, opts: Required<DownloadOptions>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "GET",
        headers: {
          accept: "application/x-pem-file, application/pkix-cert, application/pkcs7-mime, application/zip, */*;q=0.5",
          "user-agent": "credd",
        },
        ca: opts.ca ? [...rootCertificates, opts.ca] : undefined,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
        signal: AbortSignal.timeout(opts.caps.timeoutMs),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > opts.caps.bytes) {
            req.destroy(new Error(`the response is larger than ${opts.caps.bytes} bytes, more than a certificate file may be`));
            return;
          }
          chunks.push(c);
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            ...(typeof res.headers.location === "string" ? { location: res.headers.location } : {}),
            contentType: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Looks like a web page (a login form, an error page), not a certificate. */
function isHtml(r: Response): boolean {
  const head = r.body.subarray(0, 512).toString("utf8").trimStart().toLowerCase();
  return /text\/html/i.test(r.contentType) || head.startsWith("<!doctype html") || head.startsWith("<html");
}

export async function downloadLink(
  url: URL,
  cred: CredentialConfig,
  mb: MailboxConfig,
  o: DownloadOptions = {},
): Promise<{ file?: InputFile; stop?: StopReason }> {
  const opts: Required<DownloadOptions> = { ca: o.ca ?? "", caps: o.caps ?? DOWNLOAD_CAPS };
  const byHand = (link: string) => `open ${link} in a browser, download the certificate and run \`credd ingest ${cred.name} FILE\``;
  let current = url;
  for (let hop = 0; ; hop++) {
    let r: Response;
    try {
      r = await fetchOnce(current, opts);
    } catch (err) {
      const msg = errorMessage(err);
      return {
        stop: {
          why: `the link ${url.href} could not be downloaded: ${/abort|timeout/i.test(msg) ? `no answer within ${opts.caps.timeoutMs / 1000} s` : msg}`,
          fix: byHand(url.href),
        },
      };
    }
    if (r.status >= 300 && r.status < 400 && r.location) {
      let next: URL;
      try {
        next = new URL(r.location, current);
      } catch {
        return { stop: { why: `the link ${url.href} redirects to an address that is not a URL`, fix: byHand(url.href) } };
      }
      const ok = linkAllowed(next.href, mb.download_hosts);
      if (!ok.ok)
        return { stop: { why: `the link ${url.href} redirects to ${next.origin}, which credd may not follow: ${ok.why}`, fix: byHand(url.href) } };
      if (hop + 1 > opts.caps.redirects)
        return { stop: { why: `the link ${url.href} redirects more than ${opts.caps.redirects} times`, fix: byHand(url.href) } };
      current = next;
      continue;
    }
    if (r.status === 401 || r.status === 403) {
      return {
        stop: { why: `the link ${url.href} asks for a login (HTTP ${r.status}): credd does not log in to download pages`, fix: byHand(url.href) },
      };
    }
    if (r.status < 200 || r.status >= 300) return { stop: { why: `the link ${url.href} answered HTTP ${r.status}`, fix: byHand(url.href) } };
    if (isHtml(r) && !r.body.includes("-----BEGIN CERTIFICATE-----")) {
      return { stop: { why: `the link ${url.href} leads to a web page (a login page?), not a certificate`, fix: byHand(url.href) } };
    }
    const base = decodeURIComponent(current.pathname.replace(/\/+$/, "").split("/").pop() ?? "")
      .replace(/[^\w.@+-]/g, "_")
      .slice(0, 100);
    return { file: { name: `${current.hostname}/${base || "download"}`, bytes: r.body } };
  }
}

/** The CA certificates a download trusts beside the system roots: stellantis.ca_file, when set. */
export function downloadCa(caFile: string | undefined): string | undefined {
  if (!caFile) return undefined;
  try {
    return readFileSync(caFile, "utf8");
  } catch {
    return undefined; // the ingest names the file's problem; the download then trusts the system roots only
  }
}
