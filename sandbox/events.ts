// The sandbox's own record: one event per thing "Stellantis" saw or did, kept in memory, appended to
// sandbox.log as one line each, and handed to listeners (the CLI prints them, the demo narrates them).
import { appendFileSync } from "node:fs";

export type SandboxEventKind =
  | "started"
  | "mail" // an email arrived (any recipient)
  | "csr-received" // the CA desk has a CSR to sign
  | "signed" // the CA signed it and "emailed back a link" (wrote it into credd's inbox)
  | "csr-ignored" // a CSR the desk will not sign (already signed: a reminder; or broken)
  | "registration-received" // a certificate arrived to be bound to the OAuth2 client
  | "bound" // the IDP now accepts that certificate for tls_client_auth
  | "token" // the IDP issued a token
  | "token-refused" // the IDP refused a token request (invalid_client)
  | "api" // an API call was answered
  | "outage" // SMTP or IDP went down or came back
  | "mode" // the IDP switched between strict and accept-all
  | "stopped";

export interface SandboxEvent {
  seq: number;
  /** Virtual time (the clock file's), ISO. */
  at: string;
  /** Real time, ISO. */
  real: string;
  kind: SandboxEventKind;
  /** One line a person reads. */
  text: string;
  data: Record<string, unknown>;
}

export class EventLog {
  readonly events: SandboxEvent[] = [];
  private readonly listeners = new Set<(e: SandboxEvent) => void>();
  constructor(
    private readonly file: string,
    private readonly now: () => Date,
  ) {}

  add(kind: SandboxEventKind, text: string, data: Record<string, unknown> = {}): SandboxEvent {
    const e: SandboxEvent = { seq: this.events.length + 1, at: this.now().toISOString(), real: new Date().toISOString(), kind, text, data };
    this.events.push(e);
    try {
      appendFileSync(this.file, `${e.at}  ${kind.padEnd(21)} ${text}\n`);
    } catch {
      /* the log file is a convenience; the in-memory record is what callers read */
    }
    for (const l of this.listeners) l(e);
    return e;
  }

  on(listener: (e: SandboxEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first event (already recorded, or still to come) for which `pred` holds. */
  waitFor(pred: (e: SandboxEvent) => boolean, timeoutMs = 30_000, what = "a sandbox event"): Promise<SandboxEvent> {
    const hit = this.events.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`waited ${timeoutMs} ms for ${what}; the sandbox saw:\n${this.events.map((e) => `  ${e.kind}: ${e.text}`).join("\n")}`));
      }, timeoutMs);
      const off = this.on((e) => {
        if (!pred(e)) return;
        clearTimeout(timer);
        off();
        resolve(e);
      });
    });
  }
}
