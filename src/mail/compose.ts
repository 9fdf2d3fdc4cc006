// The text of the emails credd sends to the Stellantis contact: the CSR and its reminders.
import type { Config, CredentialConfig } from "../config/types.js";
import { formatDn } from "../pki/dn.js";
import { newMessageId, type OutgoingMail } from "./message.js";

export interface CsrMailInput {
  config: Config;
  cred: CredentialConfig;
  csrPem: string;
  kind: "enroll" | "renew";
  /** The certificate being replaced, for a renewal. */
  current?: { serial: string; notAfter: string };
  /** 0 for the first email, 1.. for reminders. */
  reminder: number;
  /** When the first email went out, for reminders. */
  firstSentAt?: string;
  messageId?: string;
}

export function addressOf(from: string): string {
  const m = /<([^>]+)>/.exec(from);
  return (m ? m[1]! : from).trim();
}

export function csrFilename(cred: CredentialConfig): string {
  return `${cred.mzp}.csr`;
}

export function composeCsrMail(i: CsrMailInput): OutgoingMail {
  const { cred, config } = i;
  const what = i.kind === "enroll" ? "new client certificate" : "client certificate renewal";
  const subject = (i.reminder > 0 ? `Reminder ${i.reminder}: ` : "") + `CSR for ${cred.mzp}: ${what} (Stellantis B2B API)`;
  const lines = [
    "Hello,",
    "",
    i.reminder > 0
      ? `This is reminder ${i.reminder} for the certificate signing request we sent on ${i.firstSentAt ?? "an earlier date"}; ` +
        "we have not received the signed certificate yet. The CSR is attached again, unchanged."
      : `Please sign the attached certificate signing request (CSR) for our ${what} to the Stellantis B2B connected-car API.`,
    "",
    `MZP login:       ${cred.mzp}`,
    `Client ID:       ${cred.client_id ?? "(not assigned yet)"}`,
    `Subject DN:      ${formatDn(cred.dn)}`,
    `Key:             ${cred.key.type === "rsa" ? `RSA ${cred.key.bits}` : `ECDSA ${cred.key.curve}`}, signature SHA-256`,
    `CSR file:        ${csrFilename(cred)} (PEM)`,
  ];
  if (i.kind === "renew" && i.current) {
    lines.push(`Replaces:        certificate serial ${i.current.serial}, expires ${i.current.notAfter}`);
  }
  lines.push(
    "",
    `Please send the signed certificate and the Stellantis CA certificate back to ${cred.dn.emailAddress}` +
      (addressOf(config.smtp.from) !== cred.dn.emailAddress ? ` and ${addressOf(config.smtp.from)}` : "") +
      ". PEM, DER or PKCS#7 are all fine.",
  );
  return toStellantis(config, cred, {
    subject,
    body: lines,
    attachment: { filename: csrFilename(cred), contentType: "application/pkcs10", content: i.csrPem },
    ...(i.messageId ? { messageId: i.messageId } : {}),
  });
}

export interface RegistrationMailInput {
  config: Config;
  cred: CredentialConfig;
  certPem: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  sha256: string;
}

/** Seed step 5: the new certificate (public part only) to the contact, so the IDP binds it to the OAuth2 client. */
export function composeRegistrationMail(i: RegistrationMailInput): OutgoingMail {
  const { cred, config } = i;
  const lines = [
    "Hello,",
    "",
    `The Stellantis CA has signed a new client certificate for ${cred.mzp}. The token endpoint does not accept it yet`,
    "(invalid_client): please bind this certificate to our OAuth2 client so that tokens can be issued with it.",
    "",
    `MZP login:       ${cred.mzp}`,
    `Client ID:       ${cred.client_id ?? "(none configured)"}`,
    `OAuth2 client:   ${cred.oauth?.client_id ?? "(none)"}`,
    `Subject DN:      ${formatDn(cred.dn)}`,
    `Serial:          ${i.serial}`,
    `Valid:           ${i.notBefore} to ${i.notAfter}`,
    `SHA-256:         ${i.sha256}`,
    `Attached:        ${cred.mzp}.pem (the certificate only; no private key)`,
    "",
    "Until it is bound, we keep using the current certificate.",
  ];
  return toStellantis(config, cred, {
    subject: `Certificate for ${cred.mzp}: please bind it to OAuth2 client ${cred.oauth?.client_id ?? ""} (Stellantis B2B API)`.trim(),
    body: lines,
    attachment: { filename: `${cred.mzp}.pem`, contentType: "application/x-pem-file", content: i.certPem },
  });
}

/** An email to the Stellantis contact with ops in copy, ending with credd's thanks and signature. */
function toStellantis(
  config: Config,
  cred: CredentialConfig,
  m: { subject: string; body: string[]; attachment: OutgoingMail["attachments"][number]; messageId?: string },
): OutgoingMail {
  const lines = [
    ...m.body,
    "",
    "Thank you.",
    "",
    "-- ",
    `Sent by credd for ${cred.dn.O} (credential "${cred.name}"). Replies reach ${config.alerts.to.join(", ")}.`,
  ];
  return {
    messageId: m.messageId ?? newMessageId(config.smtp.from),
    from: config.smtp.from,
    to: [config.stellantis.contact],
    cc: config.alerts.to,
    subject: m.subject,
    text: lines.join("\n") + "\n",
    attachments: [m.attachment],
  };
}
