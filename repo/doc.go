// Package repo builds and signs account repositories: the Merkle Search Tree
// of records and the signed commits over it (atproto repository v3).
//
// indigo's atproto/repo and atproto/repo/mst provide the tree and the commit
// object; indigo says that package is not yet a PDS write path, so this
// package owns what a host needs around it: revisions, block sets to persist
// in one store transaction, and signing with the account key.
package repo
