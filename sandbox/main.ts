// `npm run sandbox`: the entry point of the sandbox on its own (sandbox/command.ts), run with tsx.
import { sandboxCommand } from "./command.js";

process.exitCode = await sandboxCommand(process.argv.slice(2), {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
});
