// The credd.yaml the sandbox writes: credd's folders under the sandbox folder, its SMTP, CA and IDP.
// Paths are relative to the file's folder (credd resolves them so), so the folder can be moved.

export interface SandboxCredential {
  name: string;
  mzp: string;
  /** The application ID from the CA's email (the API's client_id). */
  clientId: string;
  /** The OAuth2 client the IDP binds certificates to. */
  oauthClientId: string;
  scope: string;
  subject: { C: string; ST: string; L: string; O: string; emailAddress: string };
}

export const DEFAULT_CREDENTIAL: SandboxCredential = {
  name: "fleet-demo",
  mzp: "MZP128745",
  clientId: "app-1a2b3c",
  oauthClientId: "partner-client",
  scope: "openid",
  subject: { C: "FR", ST: "Ile de France", L: "Paris", O: "Free2Move", emailAddress: "it@partner.example" },
};

export const CONTACT = "connectedcar@stellantis.example";
export const OPS = "ops@partner.example";
export const FROM = "credd <credd@partner.example>";

export interface ConfigInput {
  smtpPort: number;
  tokenUrl: string;
  apiBaseUrl: string;
  checkSchedule: string;
  credential: SandboxCredential;
  /** Relative to the config's folder. */
  smtpCaFile: string;
  stellantisCaFile: string;
  /** The Maildir the sandbox CA replies into, relative to the config's folder. */
  maildir: string;
}

const q = (s: string) => JSON.stringify(s);

export function renderConfig(i: ConfigInput, writtenAt: Date): string {
  const c = i.credential;
  return `# Written by \`credd sandbox\` on ${writtenAt.toISOString()}: points credd at the local Stellantis sandbox.
# Relative paths are taken from this file's folder. Not for production.
state_dir: state
runtime_dir: run
inbox_dir: inbox                      # the sandbox CA "emails back a link" by writing here
check_schedule: ${q(i.checkSchedule)}
smtp:
  url: smtp://127.0.0.1:${i.smtpPort}          # the sandbox SMTP server (STARTTLS)
  from: ${q(FROM)}
  ca_file: ${i.smtpCaFile}               # the sandbox server CA
  timeout_ms: 5000
alerts:
  to: [${OPS}]
stellantis:
  contact: ${CONTACT}
  ca_file: ${i.stellantisCaFile}         # the sandbox Stellantis CA + the sandbox server CA
credentials:
  - name: ${c.name}
    mzp: ${c.mzp}
    client_id: ${c.clientId}
    subject: { C: ${c.subject.C}, ST: ${q(c.subject.ST)}, L: ${q(c.subject.L)}, O: ${q(c.subject.O)}, emailAddress: ${c.subject.emailAddress} }
    key: { type: rsa, bits: 2048 }
    oauth: { token_url: ${q(i.tokenUrl)}, client_id: ${c.oauthClientId}, scope: ${c.scope} }
    api: { base_url: ${q(i.apiBaseUrl)}, probe_path: /fleets }
mailbox:                              # the sandbox CA replies by email, as Stellantis does (docs/mailbox.md)
  maildir: ${i.maildir}
  download_hosts: [127.0.0.1]         # the sandbox download page
`;
}
