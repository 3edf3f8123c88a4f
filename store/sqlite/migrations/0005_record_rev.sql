-- Records by the rev that last wrote them: read-after-write asks for the
-- records an AppView has not seen yet on every lagging view.
CREATE INDEX record_rev ON record(did, rev);
