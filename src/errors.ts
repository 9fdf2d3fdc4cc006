// One error type for credd: a string code, a message a person can act on, and the cause kept.
// Only src/main.ts turns codes into exit codes.

export type ErrorCode =
  | "USAGE" // bad command line
  | "CONFIG" // config file missing, unreadable or invalid
  | "NOT_FOUND" // a named credential, file or record does not exist
  | "REFUSED" // input checked and refused (wrong key, wrong DN, ...)
  | "STATE" // the action does not fit the credential's current state
  | "LOCKED" // another process holds what we need
  | "IO" // file system or database failure
  | "NETWORK" // SMTP/HTTPS failure
  | "INTERNAL";

export class CreddError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "CreddError";
  }
}

export class ConfigError extends CreddError {
  /** The file, the key path (e.g. `credentials[0].subject.C`) and what to do about it. */
  constructor(
    readonly file: string,
    readonly key: string,
    problem: string,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super("CONFIG", `${file}: ${key ? `${key}: ` : ""}${problem}${fix ? ` (fix: ${fix})` : ""}`, options);
    this.name = "ConfigError";
  }
}

export class RefusedError extends CreddError {
  /** `check` names the check that failed, e.g. "key-match" or "subject". */
  constructor(
    readonly check: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super("REFUSED", message, options);
    this.name = "RefusedError";
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The system or library code behind `err` (ENOSPC, EACCES, SQLITE_BUSY, ...), looked for in `err`
 * and its causes; credd's own codes (IO, LOCKED, ...) are skipped. Undefined when there is none.
 */
export function underlyingCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e !== null && typeof e === "object" && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (!(e instanceof CreddError) && typeof code === "string" && code !== "") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
