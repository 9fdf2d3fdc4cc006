// The sandbox's mailbox page on loopback: what ops and the Stellantis contact received, and what the
// sandbox did, refreshed every few seconds. `/mail/N` is one raw .eml; `/events.json` the record.
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo, Server } from "node:net";
import type { SandboxEvent } from "./events.js";
import type { MailRecord } from "./mail.js";

export interface MailboxPage {
  port: number;
  url: string;
  close(): Promise<void>;
}

export interface MailboxPageOptions {
  port: number;
  mails: () => MailRecord[];
  events: () => SandboxEvent[];
  /** Lines shown at the top (what runs where). */
  info: () => string[];
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

function page(o: MailboxPageOptions): string {
  const mails = o.mails().slice().reverse();
  const events = o.events().slice(-200).reverse();
  const rows = mails
    .map(
      (m) =>
        `<tr><td>${m.n}</td><td>${esc(m.at.replace("T", " ").slice(0, 19))}</td><td>${esc(m.from)}</td><td>${esc(m.to.join(", "))}</td>` +
        `<td><a href="/mail/${m.n}">${esc(m.subject)}</a></td><td>${esc(m.attachments.map((a) => a.filename).join(", "))}</td></tr>`,
    )
    .join("\n");
  const evs = events
    .map((e) => `<tr><td>${esc(e.at.replace("T", " ").slice(0, 19))}</td><td>${esc(e.kind)}</td><td>${esc(e.text)}</td></tr>`)
    .join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>credd sandbox mailbox</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;width:100%;margin-bottom:2em}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}code{font-size:13px}</style>
</head><body><h1>credd sandbox</h1><p>${o.info().map(esc).join("<br>")}</p>
<p>Times are virtual (the clock file's). Refreshes every 3 s.</p>
<h2>Mailbox (${mails.length})</h2><table><tr><th>#</th><th>at</th><th>from</th><th>to</th><th>subject</th><th>attached</th></tr>
${rows || '<tr><td colspan="6">no email yet</td></tr>'}</table>
<h2>What the sandbox did</h2><table><tr><th>at</th><th>what</th><th></th></tr>${evs}</table></body></html>`;
}

export async function startMailboxPage(o: MailboxPageOptions): Promise<MailboxPage> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
      res.end(body);
    };
    if (url.pathname === "/") return send(200, "text/html; charset=utf-8", page(o));
    if (url.pathname === "/events.json") return send(200, "application/json", JSON.stringify(o.events(), null, 2));
    const m = /^\/mail\/(\d+)$/.exec(url.pathname);
    const mail = m ? o.mails().find((x) => x.n === Number(m[1])) : undefined;
    if (mail) {
      try {
        return send(200, "text/plain; charset=utf-8", readFileSync(mail.file));
      } catch {
        return send(410, "text/plain", "the .eml file is gone");
      }
    }
    return send(404, "text/plain", "not found");
  });
  const port = await listenLoopback(server, o.port);
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Listens on 127.0.0.1:`port`, or on any free port when that one is taken; the port it got. */
export async function listenLoopback(server: Server, port: number): Promise<number> {
  const listen = (p: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(p, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  await listen(port).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== "EADDRINUSE" || port === 0) throw err;
    await listen(0);
  });
  return (server.address() as AddressInfo).port;
}
