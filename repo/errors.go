package repo

import "errors"

// Errors this package returns; test them with errors.Is. An Apply that
// returns one of them changed nothing. The caller maps the write errors to
// XRPC errors in its one error mapping (ErrRecordExists and
// ErrRecordNotFound are the client's mistake; ErrBlockNotFound and
// ErrInvalidTree are ours).
var (
	// ErrRecordExists: a create names a record key that already exists.
	ErrRecordExists = errors.New("record already exists")
	// ErrRecordNotFound: an update or delete names a record that does not
	// exist; GetRecord also returns it for a missing record.
	ErrRecordNotFound = errors.New("record not found")
	// ErrDuplicatePath: two writes of one Apply name the same record. The
	// #commit event cannot express it (consumers reject repeated paths).
	ErrDuplicatePath = errors.New("record named twice in one commit")
	// ErrTooManyWrites: more than MaxWrites writes in one Apply; the
	// #commit event's ops list is limited to that many.
	ErrTooManyWrites = errors.New("too many writes in one commit")
	// ErrInvalidWrite: a write is malformed (unknown action, record bytes
	// missing, not a CBOR map, or given for a delete).
	ErrInvalidWrite = errors.New("invalid write")
	// ErrRevNotIncreasing: the new rev does not sort after the head's rev.
	// Relays drop commits whose rev goes backwards, so this is a bug or a
	// clock problem in the caller, never something to retry blindly.
	ErrRevNotIncreasing = errors.New("rev does not increase")

	// ErrBlockNotFound is what a BlockSource returns (wrapped or not) for a
	// block it does not hold. Seen from Apply or a read, it means the store
	// lost a block the tree references: the repository is damaged.
	ErrBlockNotFound = errors.New("block not found")
	// ErrInvalidTree: a tree node read from the source is malformed (bad
	// CBOR, wrong layer, empty inner node).
	ErrInvalidTree = errors.New("invalid repository tree")
	// ErrInvalidCAR: a CAR stream is malformed or exceeds the limits of
	// CARReader.
	ErrInvalidCAR = errors.New("invalid CAR")
)
