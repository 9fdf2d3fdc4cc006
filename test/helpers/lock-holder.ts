// A separate process for the lock tests, driven line by line on stdin so that many act at the same
// moment: "go" takes the state folder's lock and prints "locked" or "refused: MESSAGE"; "release"
// lets it go and prints "released". Prints "ready" first; holds the lock until told, killed or stdin ends.
import { createInterface } from "node:readline";
import { acquireLock, type Lock } from "../../src/daemon/lock.js";
import { errorMessage } from "../../src/errors.js";

const stateDir = process.argv[2]!;
let lock: Lock | undefined;
const say = (line: string) => process.stdout.write(`${line}\n`);
createInterface({ input: process.stdin })
  .on("line", (cmd) => {
    if (cmd === "go") {
      try {
        lock = acquireLock(stateDir);
        say("locked");
      } catch (err) {
        say(`refused: ${errorMessage(err)}`);
      }
    } else if (cmd === "release") {
      lock?.release();
      lock = undefined;
      say("released");
    }
  })
  .on("close", () => lock?.release());
say("ready");
