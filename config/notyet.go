package config

import (
	"slices"
	"strings"
)

// NotYet is a variable FromEnv reads and checks whose feature has not
// landed: it is accepted, so an official pds.env starts Hearth, but setting
// it changes nothing yet.
type NotYet struct {
	Name   string
	Reason string // the feature and its state, e.g. "rate limits: not implemented yet"
}

// notYet is every variable of hearthVars that has no effect yet. A feature
// that lands takes its names out; a test keeps the list inside hearthVars.
// Only names nothing outside config uses belong here: PDS_DEV_MODE, for
// one, is used (it is the default of PDS_DISABLE_SSRF_PROTECTION).
var notYet = []NotYet{
	{envRateLimits, reasonRateLimits},
	{envRateBypassKey, reasonRateLimits},
	{envRateBypassIPs, reasonRateLimits},
	{envEmailSMTPURL, reasonEmail},
	{envEmailFrom, reasonEmail},
	{envEmailNoConfirmLink, reasonEmail},
	{envDPoPSecret, reasonOAuth},
	{envServiceName, reasonOAuth},
	{envSupportURL, reasonOAuth},
	{envAcceptingImports, reasonImport},
	{envMaxImportSize, reasonImport},
	{envAccountDB, reasonAdopt},
	{envSequencerDB, reasonAdopt},
	{envDIDCacheDB, reasonAdopt},
	{envActorStoreDir, reasonAdopt},
}

const (
	reasonRateLimits = "rate limits: not implemented yet, nothing is rate limited"
	reasonEmail      = "email: not implemented yet, no mail is sent"
	reasonOAuth      = "OAuth (DPoP, sign-in pages): not implemented yet"
	reasonImport     = "repository import (com.atproto.repo.importRepo): not implemented yet"
	reasonAdopt      = "adopting an official data directory: not implemented yet; Hearth's store is hearth.sqlite in PDS_DATA_DIRECTORY"
)

// NotYetSet returns, sorted by name, the variables set to a non-empty
// value in environ that have no effect yet, each with the reason, for the
// caller to warn about at start-up.
func NotYetSet(environ []string) []NotYet {
	var out []NotYet
	for _, name := range setNames(environ, func(name string) bool {
		return slices.ContainsFunc(notYet, func(v NotYet) bool { return v.Name == name })
	}) {
		i := slices.IndexFunc(notYet, func(v NotYet) bool { return v.Name == name })
		out = append(out, notYet[i])
	}
	return out
}

// isKnown reports whether Hearth or some version of the official PDS reads
// name, in FromEnv or elsewhere (the dev command's own variables).
func isKnown(name string) bool {
	return slices.Contains(officialVars, name) || slices.Contains(hearthVars, name) || slices.Contains(commandVars, name)
}

// commandVars are Hearth's own variables read by a command rather than by
// FromEnv.
var commandVars = []string{
	"HEARTH_DEV_PLC_PORT", // hearth dev: port of the embedded PLC directory
}

// hasOurPrefix reports whether name is in a namespace Hearth reads from,
// so that a name there nobody reads is most likely a typo.
func hasOurPrefix(name string) bool {
	return strings.HasPrefix(name, "PDS_") || strings.HasPrefix(name, "HEARTH_")
}
