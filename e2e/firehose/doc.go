// Package firehose is the end-to-end test of Hearth's event stream
// (com.atproto.sync.subscribeRepos): a mixed workload checked live and on
// replay by consumers nobody here wrote, @atproto/sync in node, goat
// firehose and indigo's relay, and by a strict Go consumer built on
// indigo's verifiers.
//
// It is a package of its own because it embeds indigo's relay
// (cmd/relay/relay), whose stream package registers the same Prometheus
// metrics as indigo/events: a test binary that links both panics at init,
// and other end-to-end tests use indigo/events.
package firehose
