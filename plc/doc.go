// Package plc is an embedded PLC directory: the did:plc HTTP API, verifying
// operation signatures and the rotation-key chain as the public directory does.
// Hearth's dev mode and its tests run it on loopback.
package plc
