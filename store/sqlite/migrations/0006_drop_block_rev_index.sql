-- Every block write paid for an index on (did, rev) that only
-- getRepo?since reads; that read scans the repository's blocks by the
-- primary key instead, and writes to large repositories get cheaper.
DROP INDEX IF EXISTS repo_block_rev;
