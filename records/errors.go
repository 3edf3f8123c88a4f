package records

import "github.com/hearth-pds/hearth/refusal"

// Error is the refusal type of every domain package.
type Error = refusal.Error

var invalidRequest = refusal.InvalidRequest
