-- Accounts, credentials, invites and the head of each repository.
CREATE TABLE account (
  did                TEXT PRIMARY KEY,
  handle             TEXT UNIQUE,
  email              TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash      TEXT NOT NULL,
  email_confirmed_at TEXT,
  invites_disabled   INTEGER NOT NULL DEFAULT 0,
  created_at         TEXT NOT NULL,
  deactivated_at     TEXT,
  takedown_ref       TEXT
) STRICT;

CREATE TABLE signing_key (
  did         TEXT PRIMARY KEY REFERENCES account(did) ON DELETE CASCADE,
  private_key BLOB NOT NULL
) STRICT;

CREATE TABLE app_password (
  did           TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
  name          TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  privileged    INTEGER NOT NULL,
  created_at    TEXT NOT NULL,
  PRIMARY KEY (did, name)
) STRICT;
CREATE INDEX app_password_hash ON app_password(did, password_hash);

CREATE TABLE refresh_token (
  id                TEXT PRIMARY KEY,
  did               TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
  app_password_name TEXT,
  expires_at        TEXT NOT NULL,
  next_id           TEXT
) STRICT;
CREATE INDEX refresh_token_did ON refresh_token(did);

CREATE TABLE invite_code (
  code        TEXT PRIMARY KEY,
  available   INTEGER NOT NULL,
  disabled    INTEGER NOT NULL DEFAULT 0,
  for_account TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX invite_code_for_account ON invite_code(for_account);

CREATE TABLE invite_code_use (
  code    TEXT NOT NULL REFERENCES invite_code(code),
  used_by TEXT NOT NULL,
  used_at TEXT NOT NULL,
  PRIMARY KEY (code, used_by)
) STRICT;

CREATE TABLE repo_root (
  did TEXT PRIMARY KEY REFERENCES account(did) ON DELETE CASCADE,
  cid TEXT NOT NULL,
  rev TEXT NOT NULL
) STRICT;

CREATE TABLE repo_block (
  did     TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
  cid     TEXT NOT NULL,
  rev     TEXT NOT NULL,
  content BLOB NOT NULL,
  PRIMARY KEY (did, cid)
) STRICT;
