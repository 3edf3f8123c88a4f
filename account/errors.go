package account

import "github.com/hearth-pds/hearth/refusal"

// Error is the refusal type of every domain package.
type Error = refusal.Error

var invalidRequest = refusal.InvalidRequest

// Refusals with fixed wording.
var (
	ErrAuthFailed        = refusal.New("AuthenticationRequired", "Invalid identifier or password")
	ErrNoInvite          = refusal.New("InvalidInviteCode", "No invite code provided")
	ErrInviteUnavailable = refusal.New("InvalidInviteCode", "Provided invite code not available")
	ErrSessionRevoked    = refusal.New("ExpiredToken", "Token has been revoked")
	ErrAccountNotFound   = refusal.ErrAccountNotFound
	ErrAccountTakedown   = refusal.New("AccountTakedown", "Account has been taken down")
	// ErrHashBusy: every password-hashing slot stayed taken for as long as
	// the request could wait. The official PDS has no such queue; this is
	// its xrpc-server's name for a server out of capacity (503), which
	// tells the client the fault is not its own and a retry may succeed.
	ErrHashBusy = refusal.New("NotEnoughResources", "Too many password checks in progress, try again later")
)
