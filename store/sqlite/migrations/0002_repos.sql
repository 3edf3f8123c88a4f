-- The record index, the firehose event log, and block lookups by revision.
CREATE TABLE record (
  did        TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
  collection TEXT NOT NULL,
  rkey       TEXT NOT NULL,
  cid        TEXT NOT NULL,
  rev        TEXT NOT NULL,
  indexed_at TEXT NOT NULL,
  PRIMARY KEY (did, collection, rkey)
) STRICT, WITHOUT ROWID;

CREATE INDEX repo_block_rev ON repo_block(did, rev);

-- One row per subscribeRepos event; frame is the complete encoded frame
-- (header and body), written once and sent as is to every subscriber.
CREATE TABLE repo_event (
  seq          INTEGER PRIMARY KEY,
  did          TEXT NOT NULL,
  kind         TEXT NOT NULL,
  sequenced_at TEXT NOT NULL,
  frame        BLOB NOT NULL
) STRICT;
CREATE INDEX repo_event_time ON repo_event(sequenced_at);
