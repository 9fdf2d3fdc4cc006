// Every key of credd.yaml with its value, default and meaning, in file order: the source of the
// KEYS section of credd.yaml(5). test/unit/man-pages.test.ts checks it against the validator
// (src/config/validate.ts, credential.ts, dn-rules.ts): the keys each mapping accepts, and the
// value a config that leaves a key out is loaded with. Add a key here when the validator gains one.

export interface ConfigKey {
  /** The key's path: `smtp.url`, `credentials[].oauth.scope`. */
  key: string;
  /** What the value is, for the man page: `DIR`, `FILE`, `[ADDRESS, ...]`. */
  value: string;
  /** The default as the man page says it; `required` when the key must be given (in its section). */
  default: string;
  /** What the loaded config holds when the key is left out (the test checks it); absent: nothing. */
  loaded?: unknown;
  text: string;
}

export const CONFIG_KEYS: readonly ConfigKey[] = [
  { key: "state_dir", value: "DIR", default: "/var/lib/credd", loaded: "/var/lib/credd", text: "The SQLite database (credd.db), keys and certificates (credentials/NAME/live, archive)." },
  { key: "runtime_dir", value: "DIR", default: "/run/credd", loaded: "/run/credd", text: "OAuth2 tokens (NAME/token, NAME/token.json) and the lock." },
  { key: "inbox_dir", value: "DIR", default: "STATE_DIR/inbox", loaded: "/var/lib/credd/inbox", text: "Drop signed certificates here; the daemon takes them in." },
  { key: "check_schedule", value: "CRON", default: '"*/10 * * * *"', loaded: "*/10 * * * *", text: "When the daemon checks every credential: a cron expression (minute hour day month weekday), quoted." },
  { key: "metrics_file", value: "FILE.prom", default: "none", text: "Prometheus textfile for node_exporter's textfile collector, written after each check (mode 0644). Must end in .prom." },
  { key: "smtp", value: "MAPPING", default: "required", text: "How credd sends email (CSRs, reminders, alerts)." },
  { key: "smtp.url", value: "URL", default: "required", text: "smtp://HOST[:PORT] (STARTTLS, port 587) or smtps://HOST[:PORT] (implicit TLS, port 465); no user or password in it." },
  { key: "smtp.from", value: "MAILBOX", default: "required", text: 'The sender, e.g. "credd <credd@partner.example>".' },
  { key: "smtp.user", value: "NAME", default: "none", text: "SMTP login; needs smtp.password_file." },
  { key: "smtp.password_file", value: "FILE", default: "none", text: "File holding the SMTP password; a relative path names a systemd credential ($CREDENTIALS_DIRECTORY)." },
  { key: "smtp.ca_file", value: "FILE", default: "none", text: "CA certificates trusted for the SMTP server besides the system roots." },
  { key: "smtp.tls", value: "starttls|implicit|none", default: "starttls for smtp://, implicit for smtps://", loaded: "starttls", text: "none sends in plaintext and is refused together with smtp.user." },
  { key: "smtp.timeout_ms", value: "MILLISECONDS", default: "30000", loaded: 30000, text: "Per SMTP attempt, 1000 to 600000." },
  { key: "alerts", value: "MAPPING", default: "required", text: "Who is told when a person must act." },
  { key: "alerts.to", value: "[ADDRESS, ...]", default: "required", text: "Alert digests go here; also in copy of every CSR email." },
  { key: "alerts.critical_to", value: "[ADDRESS, ...]", default: "none", loaded: [], text: "Added to digests that hold a critical alert (a pager address)." },
  { key: "alerts.expiry_days", value: "[DAYS, ...]", default: "[30, 14, 7, 3, 1]", loaded: [30, 14, 7, 3, 1], text: "Days before expiry at which the expiry alert fires; critical from 7 days." },
  { key: "stellantis", value: "MAPPING", default: "the defaults below", text: "The Stellantis side." },
  { key: "stellantis.contact", value: "ADDRESS", default: "connectedcar@mpsa.com", loaded: "connectedcar@mpsa.com", text: "Where CSRs are sent: the address your Stellantis contact gave you." },
  { key: "stellantis.ca_file", value: "FILE", default: "none", text: "The Stellantis CA and intermediates; ingest pins signed certificates to it (needed to ingest)." },
  { key: "mailbox", value: "MAPPING", default: "none", text: "Read Stellantis' reply by itself, from IMAP or a Maildir (one of mailbox.imap or mailbox.maildir); off when absent." },
  { key: "mailbox.imap", value: "MAPPING", default: "none", text: "An IMAP mailbox: TLS on port 993, STARTTLS required on any other port." },
  { key: "mailbox.imap.host", value: "HOST", default: "required in imap", text: "The IMAP server." },
  { key: "mailbox.imap.port", value: "PORT", default: "993", text: "993: TLS from the start; any other port: STARTTLS, required." },
  { key: "mailbox.imap.user", value: "NAME", default: "required in imap", text: "The login." },
  { key: "mailbox.imap.password_file", value: "FILE", default: "none", text: "File holding the password (or a systemd credential name); or access_token_file." },
  { key: "mailbox.imap.access_token_file", value: "FILE", default: "none", text: "File holding an OAuth2 bearer token (XOAUTH2), instead of password_file." },
  { key: "mailbox.imap.ca_file", value: "FILE", default: "none", text: "CA certificates trusted for the IMAP server besides the system roots." },
  { key: "mailbox.imap.folder", value: "FOLDER", default: "INBOX", text: "The folder replies arrive in." },
  { key: "mailbox.maildir", value: "DIR", default: "none", text: "A local Maildir a mail server delivers to, instead of mailbox.imap." },
  { key: "mailbox.senders", value: "[@DOMAIN|ADDRESS, ...]", default: "the domain of stellantis.contact", text: "Who may send a reply that is matched by the MZP alone." },
  { key: "mailbox.download_hosts", value: "[HOST, ...]", default: "[]", text: "Hosts whose https links credd may download; none by default." },
  { key: "mailbox.done_folder", value: "FOLDER", default: "credd/done", text: "Where a handled message is moved." },
  { key: "mailbox.refused_folder", value: "FOLDER", default: "credd/refused", text: "Where a message credd could not finish is moved (ops were emailed)." },
  { key: "credentials", value: "LIST", default: "required", text: "One entry per Stellantis credential (at least one)." },
  { key: "credentials[].name", value: "NAME", default: "required", loaded: "fleet-prod", text: 'Folder name and command-line name: 1 to 63 letters, digits, "-" or "_"; unique ignoring case.' },
  { key: "credentials[].mzp", value: "MZPnnnnnn", default: "required", loaded: "MZP128745", text: "The Stellantis login; becomes the certificate's CN." },
  { key: "credentials[].subject", value: "MAPPING", default: "required", text: "The DN credd builds, in the order Stellantis asks: C, ST, L, O, OU, CN, emailAddress." },
  { key: "credentials[].subject.C", value: "XX", default: "required", text: "Country: two capital letters." },
  { key: "credentials[].subject.ST", value: "TEXT", default: "required", text: "State or province." },
  { key: "credentials[].subject.L", value: "TEXT", default: "required", text: "Locality (city)." },
  { key: "credentials[].subject.O", value: "TEXT", default: "required", text: "Organisation." },
  { key: "credentials[].subject.emailAddress", value: "ADDRESS", default: "required", text: "ASCII email address in the DN." },
  { key: "credentials[].subject.OU", value: "TEXT", default: "Programs Partners", text: "Fixed by Stellantis; if given it must be exactly that." },
  { key: "credentials[].subject.CN", value: "TEXT", default: "the mzp", text: "Fixed: the MZP; if given it must equal mzp." },
  { key: "credentials[].key", value: "MAPPING", default: "{ type: rsa, bits: 2048 }", loaded: { type: "rsa", bits: 2048 }, text: "The key made for each CSR." },
  { key: "credentials[].key.type", value: "rsa|ec", default: "rsa", text: "RSA or elliptic curve." },
  { key: "credentials[].key.bits", value: "2048|3072|4096", default: "2048", text: "For type: rsa." },
  { key: "credentials[].key.curve", value: "P-256|P-384", default: "required for type: ec", text: "For type: ec." },
  { key: "credentials[].renew_before_days", value: "DAYS", default: "30", loaded: 30, text: "Renew a third of the lifetime before expiry, but never later than this many days before it (1 to 365)." },
  { key: "credentials[].remind_after_days", value: "DAYS", default: "7", loaded: 7, text: "Re-send the same CSR when the CA has not answered after this many days (1 to 90)." },
  { key: "credentials[].auto_enroll", value: "true|false", default: "false", loaded: false, text: "true: the daemon makes the first CSR itself when there is no certificate." },
  { key: "credentials[].client_id", value: "ID", default: "none", text: "Application ID from the CA's email, shown in the CSR email." },
  { key: "credentials[].oauth", value: "MAPPING", default: "none", text: "OAuth2 tokens over mTLS; absent for Basic-auth credentials." },
  { key: "credentials[].oauth.token_url", value: "URL", default: "required in oauth", text: "The token endpoint (https://)." },
  { key: "credentials[].oauth.client_id", value: "ID", default: "required in oauth", text: "The OAuth2 client ID Stellantis sent." },
  { key: "credentials[].oauth.scope", value: "SCOPE", default: "openid", loaded: "openid", text: "The scope asked for." },
  { key: "credentials[].basic_auth", value: "MAPPING", default: "none", text: "HTTP Basic auth for older credentials (no token step)." },
  { key: "credentials[].basic_auth.user", value: "NAME", default: "required in basic_auth", text: "The user, usually the MZP." },
  { key: "credentials[].basic_auth.password_file", value: "FILE", default: "required in basic_auth", text: "File holding the password (or a systemd credential name)." },
  { key: "credentials[].api", value: "MAPPING", default: "none", text: "The API `credd doctor` calls once." },
  { key: "credentials[].api.base_url", value: "URL", default: "required in api", text: "The API's base URL (https://)." },
  { key: "credentials[].api.probe_path", value: "PATH", default: "/fleets", loaded: "/fleets", text: "Path of the one read-only call; starts with /." },
  { key: "credentials[].proxy", value: "MAPPING", default: "none", text: "A local plain-HTTP listener that forwards to api.base_url with the live certificate and token (docs/proxy.md)." },
  { key: "credentials[].proxy.listen", value: "HOST:PORT|PATH", default: "required in proxy", text: "Where it listens: a loopback address and port, or an absolute unix socket path." },
  { key: "credentials[].proxy.allow_remote", value: "true|false", default: "false", loaded: false, text: "true: a non-loopback listen address is accepted (anyone reaching it uses the credential)." },
  { key: "credentials[].proxy.timeout_ms", value: "MS", default: "30000", loaded: 30000, text: "Deadline for the upstream's response headers (100 to 600000)." },
  { key: "credentials[].proxy.max_body_bytes", value: "BYTES", default: "10485760", loaded: 10485760, text: "Largest request body forwarded; larger gets 413." },
  { key: "credentials[].deploy_hooks", value: "[[ARG, ...], ...]", default: "none", loaded: [], text: "Commands run after a new certificate goes live: argv lists, no shell, 60 s timeout each." },
  { key: "credentials[].pkcs12_password_file", value: "FILE", default: "none", text: "Also write live/bundle.p12 (for Java), encrypted with the password in this file." },
];
