package serviceauth

import "strings"

// The official PDS's method lists (pipethrough.ts), matched without
// regard to case as it matches them.
var (
	// protected methods manage the account itself: they are never
	// proxied and no service-auth token is issued for them.
	protected = lowerSet(
		"com.atproto.admin.sendEmail",
		"com.atproto.identity.requestPlcOperationSignature",
		"com.atproto.identity.signPlcOperation",
		"com.atproto.identity.updateHandle",
		"com.atproto.server.activateAccount",
		"com.atproto.server.confirmEmail",
		"com.atproto.server.createAppPassword",
		"com.atproto.server.deactivateAccount",
		"com.atproto.server.getAccountInviteCodes",
		"com.atproto.server.getSession",
		"com.atproto.server.listAppPasswords",
		"com.atproto.server.requestAccountDelete",
		"com.atproto.server.requestEmailConfirmation",
		"com.atproto.server.requestEmailUpdate",
		"com.atproto.server.revokeAppPassword",
		"com.atproto.server.updateEmail",
	)
	// privileged methods (direct messages, and createAccount for
	// migration) need a full session or a privileged app password.
	privileged = lowerSet(
		"chat.bsky.actor.deleteAccount",
		"chat.bsky.actor.exportAccountData",
		"chat.bsky.convo.deleteMessageForSelf",
		"chat.bsky.convo.getConvo",
		"chat.bsky.convo.getConvoForMembers",
		"chat.bsky.convo.getLog",
		"chat.bsky.convo.getMessages",
		"chat.bsky.convo.leaveConvo",
		"chat.bsky.convo.listConvos",
		"chat.bsky.convo.muteConvo",
		"chat.bsky.convo.sendMessage",
		"chat.bsky.convo.sendMessageBatch",
		"chat.bsky.convo.unmuteConvo",
		"chat.bsky.convo.updateRead",
		"com.atproto.server.createAccount",
	)
)

func lowerSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

// Protected reports whether nsid may never be proxied nor service-authed.
func Protected(nsid string) bool { return protected[strings.ToLower(nsid)] }

// Privileged reports whether nsid needs a full session or a privileged app
// password to be proxied or service-authed.
func Privileged(nsid string) bool { return privileged[strings.ToLower(nsid)] }
