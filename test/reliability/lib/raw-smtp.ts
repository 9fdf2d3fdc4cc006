// A plaintext SMTP server written by hand, so a test can misbehave exactly where a real server never
// would on purpose: hang up in the middle of DATA, or after the whole message but before the reply.
import { createServer, type Server, type Socket } from "node:net";

/** What the server does with one message, in the order messages arrive. */
export type Behaviour =
  | "accept" // 250 after the final "."
  | "drop-mid-data" // closes the connection once some of the message has arrived
  | "drop-after-dot" // takes the whole message (it counts as received), then closes without a reply
  | "reject-451"; // 451 after the final "."

export interface RawMessage {
  raw: string;
  messageId: string;
  subject: string;
  /** How the server answered. */
  behaviour: Behaviour;
}

export interface RawSmtp {
  port: number;
  /** Complete messages the server got, whatever it answered. */
  received: RawMessage[];
  /** Connections cut in the middle of DATA. */
  cutMidData: number;
  /** Behaviours for the next messages; "accept" once the script is used up. */
  script: Behaviour[];
  close(): Promise<void>;
}

export async function startRawSmtp(script: Behaviour[] = [], port = 0): Promise<RawSmtp> {
  const sockets = new Set<Socket>();
  const api: RawSmtp = { port: 0, received: [], cutMidData: 0, script, close: async () => {} };
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    let buf = "";
    let inData = false;
    let data = "";
    let behaviour: Behaviour = "accept";
    const say = (line: string) => sock.write(`${line}\r\n`);
    say("220 raw.test ESMTP ready");
    sock.on("data", (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      for (;;) {
        if (inData) {
          data += buf;
          buf = "";
          if (behaviour === "drop-mid-data" && data.length > 200) {
            api.cutMidData++;
            sock.destroy();
            return;
          }
          const end = data.indexOf("\r\n.\r\n");
          if (end < 0) return;
          const raw = data.slice(0, end + 2);
          buf = data.slice(end + 5);
          data = "";
          inData = false;
          if (behaviour === "drop-mid-data") {
            // The message was shorter than the cut-off: cut it now, before the end is acknowledged.
            api.cutMidData++;
            sock.destroy();
            return;
          }
          const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "mi").exec(raw.split("\r\n\r\n")[0] ?? "")?.[1]?.trim() ?? "";
          if (behaviour !== "reject-451")
            api.received.push({ raw, messageId: header("Message-ID").replace(/^<|>$/g, ""), subject: header("Subject"), behaviour });
          if (behaviour === "drop-after-dot") {
            sock.destroy();
            return;
          }
          say(behaviour === "reject-451" ? "451 4.3.0 try again later" : "250 2.0.0 OK queued");
          continue;
        }
        const i = buf.indexOf("\r\n");
        if (i < 0) return;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO") {
          say("250-raw.test");
          say("250 8BITMIME");
        } else if (verb === "HELO") say("250 raw.test");
        else if (verb === "MAIL" || verb === "RCPT" || verb === "RSET" || verb === "NOOP") say("250 2.1.0 OK");
        else if (verb === "DATA") {
          behaviour = api.script.shift() ?? "accept";
          inData = true;
          say("354 end with <CRLF>.<CRLF>");
        } else if (verb === "QUIT") {
          say("221 bye");
          sock.end();
          return;
        } else say("502 5.5.2 not implemented");
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  api.port = (server.address() as { port: number }).port;
  api.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return api;
}
