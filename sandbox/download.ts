// The sandbox's download page: "a link to download your certificate & Stellantis CA certificate",
// as Stellantis' reply names it. HTTPS on loopback with the sandbox server certificate (its CA is in
// the stellantis.ca_file the sandbox writes, which credd's downloads trust).
import https from "node:https";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { listenLoopback } from "./web.js";

export interface DownloadPage {
  port: number;
  /** The link for one issued certificate. */
  linkFor(serial: string): string;
  close(): Promise<void>;
}

/** Serves `issuedDir/SERIAL-bundle.pem` (certificate + CA) at /download/SERIAL.pem. */
export async function startDownloadPage(o: { port: number; issuedDir: string; tls: { certPem: string; keyPem: string } }): Promise<DownloadPage> {
  const server = https.createServer({ cert: o.tls.certPem, key: o.tls.keyPem }, (req, res) => {
    const m = /^\/download\/([0-9A-Fa-f]{1,64})\.pem$/.exec(new URL(req.url ?? "/", "https://127.0.0.1").pathname);
    const file = m ? join(o.issuedDir, `${m[1]}-bundle.pem`) : undefined;
    if (!file || !existsSync(file)) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("no such certificate");
      return;
    }
    res.writeHead(200, { "content-type": "application/x-pem-file", "content-disposition": `attachment; filename="${m![1]}.pem"` });
    res.end(readFileSync(file));
  });
  const port = await listenLoopback(server, o.port);
  return {
    port,
    linkFor: (serial) => `https://127.0.0.1:${port}/download/${serial}.pem`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
