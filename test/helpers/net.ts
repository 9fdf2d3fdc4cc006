// Loopback ports for the servers the tests start themselves (Dovecot, PostgreSQL).
import { createServer } from "node:net";

/** A TCP port free on 127.0.0.1 right now (the kernel's pick), for a server a test starts. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}
