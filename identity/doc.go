// Package identity creates and updates the did:plc identities of hosted
// accounts (signed PLC operations) and resolves DIDs and handles.
package identity
