// One `credd run` per state folder: a pid lock file, taken exclusively, stale locks from dead pids reclaimed.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CreddError } from "../errors.js";

export interface Lock {
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function acquireLock(stateDir: string): Lock {
  const file = join(stateDir, "credd.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        release() {
          try {
            if (readFileSync(file, "utf8").trim() === String(process.pid)) unlinkSync(file);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(file, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new CreddError(
          "LOCKED",
          `another credd run (pid ${pid}) is already using ${stateDir}; stop it first (systemctl stop credd), ` +
            `or give this one its own state_dir`,
        );
      }
      unlinkSync(file); // stale: the process that wrote it is gone
    }
  }
  throw new CreddError("LOCKED", `could not take the lock ${file}`);
}
