// Package validation holds the checks of gingham objects that need other
// objects to decide: an IPPool overlapping another pool, a pool whose cidr or
// blockSize changes, a pool whose blocks disagree with its blockSize. The API
// server cannot know these (CEL rules see one object), so ginghamctl runs them
// before it writes anything, and the agent runs them on what it watches.
//
// Single-object checks are api/model's; every error here is a
// *model.FieldError (errors.Is(err, model.ErrInvalid)), so messages read
// like the API server's and Calico's: "error with field spec.cidr = '…'
// (IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.0.0.0/16)".
package validation
