-- app.bsky.actor preferences, kept as the JSON array clients send.
CREATE TABLE account_pref (
  did         TEXT PRIMARY KEY REFERENCES account(did) ON DELETE CASCADE,
  preferences BLOB NOT NULL
) STRICT;
