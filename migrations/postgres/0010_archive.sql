-- credd schema: each version's private key (sealed with AES-256-GCM under the key-encryption key,
-- src/store/pg/keywrap.ts: never in clear), CSR, certificate and chain, written by the host that
-- made or ingested them, so every host of the store can materialise archive/ and live/
-- (docs/shared-store.md). The SQLite twin (migrations/0010_archive.sql) does nothing.

CREATE TABLE archive (
  credential   text NOT NULL,
  version      integer NOT NULL,
  key_envelope bytea,                 -- "CKW" envelope: kek id, nonce, tag, ciphertext
  kek_id       text,                  -- which KEK opens it (also inside the envelope), for ops
  csr_pem      text,
  cert_pem     text,
  chain_pem    text,
  updated_at   timestamptz NOT NULL,
  PRIMARY KEY (credential, version)
);
