-- Blob metadata and which records reference which blobs.
CREATE TABLE blob (
  did          TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
  cid          TEXT NOT NULL,
  mime_type    TEXT NOT NULL,
  size         INTEGER NOT NULL,
  -- temp_key names the upload in the blob store's temporary area while no
  -- record references the blob; NULL once it is permanent.
  temp_key     TEXT,
  created_at   TEXT NOT NULL,
  -- released_at is when the last reference went away; the collector
  -- deletes the blob a grace period later unless it is referenced again.
  released_at  TEXT,
  takedown_ref TEXT,
  PRIMARY KEY (did, cid)
) STRICT, WITHOUT ROWID;
CREATE INDEX blob_temp ON blob(created_at) WHERE temp_key IS NOT NULL;
CREATE INDEX blob_released ON blob(released_at) WHERE released_at IS NOT NULL;

CREATE TABLE record_blob (
  did        TEXT NOT NULL REFERENCES account(did) ON DELETE CASCADE,
  collection TEXT NOT NULL,
  rkey       TEXT NOT NULL,
  blob_cid   TEXT NOT NULL,
  PRIMARY KEY (did, collection, rkey, blob_cid)
) STRICT, WITHOUT ROWID;
CREATE INDEX record_blob_cid ON record_blob(did, blob_cid);
