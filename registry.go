package gust

import "context"

// Registry stores functions, their immutable versions, aliases and code.
// The JetStream implementation lives in package registry; reads are served
// from a cache that a KV watch keeps current, so they are cheap enough for
// the invocation path.
type Registry interface {
	// Deploy stores code (content-addressed by sha256), creates the next
	// version of name with spec, and points the live alias at it. The
	// function is created if it does not exist. shape is the driver's
	// module shape, recorded on the version. Errors: EINVALID, ECONFLICT.
	Deploy(ctx context.Context, name string, spec Spec, shape string, code []byte) (*Version, error)
	// Function returns one function. Errors: ENOTFOUND.
	Function(ctx context.Context, name string) (*Function, error)
	// Functions lists every function, sorted by name.
	Functions(ctx context.Context) ([]*Function, error)
	// Version returns one version. Errors: ENOTFOUND.
	Version(ctx context.Context, name string, number int) (*Version, error)
	// Versions lists a function's versions, oldest first. Errors: ENOTFOUND.
	Versions(ctx context.Context, name string) ([]*Version, error)
	// Rollback points the live alias at an existing version, wholly.
	// Errors: ENOTFOUND.
	Rollback(ctx context.Context, name string, number int) (*Function, error)
	// SetAlias creates or replaces an alias. Errors: ENOTFOUND, EINVALID.
	SetAlias(ctx context.Context, name string, alias Alias) (*Function, error)
	// DeleteAlias removes an alias other than live. Errors: ENOTFOUND, EINVALID.
	DeleteAlias(ctx context.Context, name, alias string) (*Function, error)
	// Delete removes a function, its versions and aliases; code no other
	// version uses is removed too. Errors: ENOTFOUND.
	Delete(ctx context.Context, name string) error
	// Code returns the artifact with the given digest. Errors: ENOTFOUND.
	Code(ctx context.Context, digest string) ([]byte, error)
}
