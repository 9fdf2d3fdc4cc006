// What a command writes to: stdout for results, stderr for progress and errors.
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** stdout or stderr once it met a closed pipe (`credd list | head -1`): nothing more is written to it. */
const closed = new Set<NodeJS.WriteStream>();

function writeTo(s: NodeJS.WriteStream, line: string): void {
  if (!closed.has(s)) s.write(`${line}\n`);
}

export const processIo: Io = {
  out: (l) => writeTo(process.stdout, l),
  err: (l) => writeTo(process.stderr, l),
};

/**
 * A reader that stops reading early (`credd doctor NAME | head -1`) is no error of the command: as
 * CLI tools do, credd then stops writing to that stream and the command ends as it would have, with
 * its own exit code, instead of dying on node's unhandled EPIPE with a stack trace. Node ignores
 * SIGPIPE, so the closed pipe arrives as an EPIPE 'error' event on the stream; any other error of
 * stdout or stderr is thrown as before. Called once, by src/main.ts.
 */
export function stopWritingOnClosedPipe(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") closed.add(s);
      // A write already queued when the pipe closed fails again on the destroyed stream.
      else if (!closed.has(s)) throw err;
    });
  }
}

export interface Globals {
  configPath: string;
}
