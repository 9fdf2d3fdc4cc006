#!/usr/bin/env node
// Entry point: runs the command line (src/cli/dispatch.ts) and turns error codes into exit codes.
// Its static imports stay small: until they are loaded, a SIGTERM to `credd run` has no handler yet.
import { main } from "./cli/dispatch.js";
import { processIo, stopWritingOnClosedPipe } from "./cli/io.js";
import { CreddError, errorMessage, type ErrorCode } from "./errors.js";

const EXIT: Record<ErrorCode, number> = {
  USAGE: 2,
  CONFIG: 1,
  NOT_FOUND: 1,
  REFUSED: 1,
  STATE: 1,
  LOCKED: 1,
  IO: 1,
  NETWORK: 1,
  INTERNAL: 1,
};

async function entry(): Promise<void> {
  stopWritingOnClosedPipe();
  let code: number;
  try {
    code = await main(process.argv.slice(2));
  } catch (err) {
    const c = err instanceof CreddError ? err.code : "INTERNAL";
    processIo.err(`credd: ${errorMessage(err)}`);
    if (c === "INTERNAL" && process.env.CREDD_DEBUG && err instanceof Error) processIo.err(err.stack ?? "");
    code = EXIT[c] ?? 1;
  }
  process.exitCode = code;
}

await entry();
