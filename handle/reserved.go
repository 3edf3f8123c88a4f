package handle

import "strings"

// reserved holds labels no one may take under a service domain. It is our
// own list, not the official one (which is a long list of common subdomain
// prefixes); it covers the same ground:
//
//   - names of the protocol and its parts, which would pass for official
//     endpoints or services (xrpc.pds.example.com, relay.pds.example.com);
//   - names of hosts and services an operator may want under the same
//     domain (www, mail, api, status), since service handles are DNS names;
//   - names of roles and teams, which could pass for the operator or for
//     staff (admin, support, security, moderation, official);
//   - brand names that would confuse people about who runs the account;
//   - words that are page or route names in clients (login, settings).
//
// Labels shorter than MinServiceLabel cannot be service handles anyway and
// are left out. An operator who wants one of these handles can still assign
// it with the admin API, which skips this list.
var reserved = toSet(`
	atp atproto plc pds did dids repo repos tid nsid xrpc lex lexicon lexicons
	handle handles relay relays firehose jetstream appview labeler labelers
	labels ozone feedgen feed feeds bgs entryway sync blob blobs record records
	identity oauth dpop jwt jwks wellknown well-known subscribe subscriberepos
	plcdirectory directory

	bsky bluesky blueskyweb blueskysocial bskyapp bskysocial hearth atprotocol
	atmosphere

	admin admins administrator administrators root sysadmin superuser sudo
	operator operators owner staff team official verified verification
	moderator moderators moderation mod mods modteam trust safety
	trustandsafety trust-and-safety support help helpdesk contact info
	security abuse postmaster hostmaster webmaster noc legal privacy terms tos
	copyright dmca billing payments sales marketing press media news jobs
	careers feedback report reports appeal appeals system service services
	bot bots robot null undefined nil none nobody anonymous everyone here all
	self user users account accounts profile profiles settings notifications
	announcements status

	www www1 www2 web mail email smtp imap pop pop3 dns ns1 ns2 ns3 ftp sftp
	ssh vpn proxy cdn static assets img images files upload uploads download
	downloads api apis rpc graphql wss socket gateway edge origin host
	hostname localhost server servers node nodes cluster health healthz
	metrics monitor monitoring logs dashboard console panel portal app apps
	dev staging stage prod production test testing beta alpha demo sandbox
	internal intranet local cache database backup backups git docs doc
	documentation blog wiki forum community shop store autoconfig autodiscover
	wpad isatap mta-sts

	login logout signin signout signup register auth authorize sso password
	reset verify confirm invite invites welcome home index about explore
	search trending discover
`)

func toSet(words string) map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.Fields(words) {
		set[w] = true
	}
	return set
}

// isReserved reports whether a service-handle label is reserved, also when
// hyphens are inserted to dodge the list ("ad-min").
func isReserved(label string) bool {
	return reserved[label] || reserved[strings.ReplaceAll(label, "-", "")]
}
