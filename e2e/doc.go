// Package e2e holds end-to-end tests: the built hearth binary started on
// loopback and driven by real peers nobody here wrote (the reference PLC
// directory, @atproto/api, goat), installed by scripts/install-test-peers.sh.
package e2e
