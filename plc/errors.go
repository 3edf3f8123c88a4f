package plc

import "errors"

var (
	// ErrInvalidOperation is wrapped by every rejection of a submitted
	// operation: malformed JSON, unsupported keys, a bad signature, a wrong
	// genesis hash, a prev that is not in the log, a recovery outside the
	// 72-hour window. The wrapping error's text says which. HTTP: 400.
	ErrInvalidOperation = errors.New("invalid operation")

	// ErrNotRegistered means no operation was ever accepted for the DID.
	// HTTP: 404, as every PLC directory answers.
	ErrNotRegistered = errors.New("DID not registered")

	// ErrDeactivated means the DID's current operation is a tombstone. Its
	// logs stay readable; its document and data do not. HTTP: 410, as the
	// public directory answers (the reference server 0.0.1 answers 404).
	ErrDeactivated = errors.New("DID not available")

	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("plc directory closed")
)
