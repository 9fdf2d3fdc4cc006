// The validated, typed configuration: what src/config/load.ts produces from the YAML file.
// Key names follow DESIGN.md's contract; paths are absolute once loaded.

export type KeySpec = { type: "rsa"; bits: 2048 | 3072 | 4096 } | { type: "ec"; curve: "P-256" | "P-384" };

/** The Distinguished Name parts a user configures; OU and CN are fixed/derived. */
export interface SubjectConfig {
  C: string;
  ST: string;
  L: string;
  O: string;
  emailAddress: string;
}

/** The full DN in the order Stellantis asks for: C, ST, L, O, OU, CN, emailAddress. */
export interface StellantisDn extends SubjectConfig {
  OU: "Programs Partners";
  CN: string;
}

export interface OAuthConfig {
  token_url: string;
  client_id: string;
  scope: string;
}

export interface BasicAuthConfig {
  user: string;
  password_file: string;
}

export interface ApiConfig {
  base_url: string;
  probe_path: string;
}

/** The local plain-HTTP listener that forwards to api.base_url with the live certificate and token. */
export interface ProxyConfig {
  /** "127.0.0.1:8301", "[::1]:8301" or an absolute unix socket path. */
  listen: string;
  /** A listen address other than loopback is refused unless this is true (default false). */
  allow_remote: boolean;
  /** One deadline for the upstream exchange up to the response headers (default 30000). */
  timeout_ms: number;
  /** Largest request body forwarded, in bytes (default 10485760). */
  max_body_bytes: number;
}

export interface CredentialConfig {
  name: string;
  mzp: string;
  subject: SubjectConfig;
  /** subject + OU + CN, ready for the CSR and for comparing certificates. */
  dn: StellantisDn;
  key: KeySpec;
  renew_before_days: number;
  remind_after_days: number;
  /** Start an enrollment by itself when the credential has no certificate (default false). */
  auto_enroll: boolean;
  client_id?: string;
  oauth?: OAuthConfig;
  basic_auth?: BasicAuthConfig;
  api?: ApiConfig;
  proxy?: ProxyConfig;
  deploy_hooks: string[][];
  pkcs12_password_file?: string;
}

export interface SmtpConfig {
  url: string;
  /** "smtp" or "smtps", from the URL. */
  secure: boolean;
  host: string;
  port: number;
  from: string;
  user?: string;
  password_file?: string;
  ca_file?: string;
  /** "starttls" (default for smtp://: required), "implicit" (smtps://) or "none" (plaintext, opt-in). */
  tls: "starttls" | "implicit" | "none";
  /** Per-attempt timeout in milliseconds (default 30000). */
  timeout_ms: number;
}

export interface AlertsConfig {
  to: string[];
  /** Also told when a digest holds a critical alert (a pager address); default none. */
  critical_to: string[];
  /** Days before expiry at which an expiry alert fires, largest first (default 30, 14, 7, 3, 1). */
  expiry_days: number[];
}

export interface StellantisConfig {
  contact: string;
  ca_file?: string;
}

/** Where Stellantis' replies are read (docs/mailbox.md); the section is optional. */
export interface ImapConfig {
  host: string;
  /** 993: TLS from the start; any other port: STARTTLS, required. */
  port: number;
  user: string;
  /** Exactly one of the two (a password, or an OAuth2 bearer token for XOAUTH2). */
  password_file?: string;
  access_token_file?: string;
  /** Added to the system roots. */
  ca_file?: string;
  folder: string;
}

export interface MailboxConfig {
  /** Exactly one source: an IMAP account or a local Maildir. */
  imap?: ImapConfig;
  maildir?: string;
  /** "@domain" or a full address; default the domain of stellantis.contact. */
  senders: string[];
  /** Hosts whose https links credd may fetch; default none. */
  download_hosts: string[];
  done_folder: string;
  refused_folder: string;
}

/** A PostgreSQL store shared by several credd hosts (docs/shared-store.md); paths absolute. */
export interface PostgresStoreConfig {
  url_file: string;
  ca_file?: string;
  key_encryption_key_file: string;
  /** During a KEK rotation: older keys that still open (never seal) keys in the store; [] otherwise. */
  previous_key_encryption_key_files?: string[];
}

/** `sqlite` (credd.db in state_dir, the default) or a shared PostgreSQL database. */
export type StoreConfig = "sqlite" | { postgres: PostgresStoreConfig };

export interface Config {
  /** Absolute path of the file this came from, for messages. */
  file: string;
  /** Where the state lives (default "sqlite"). */
  store: StoreConfig;
  state_dir: string;
  runtime_dir: string;
  inbox_dir: string;
  check_schedule: string;
  /** Prometheus textfile (node_exporter) written after each check; absent: no metrics. */
  metrics_file?: string;
  smtp: SmtpConfig;
  alerts: AlertsConfig;
  stellantis: StellantisConfig;
  credentials: CredentialConfig[];
  /** Replies read from a mailbox; absent: the feature is off. */
  mailbox?: MailboxConfig;
}
