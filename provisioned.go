package gust

import "context"

// provisionedKey is the context key of WithProvisioned.
type provisionedKey struct{}

// WithProvisioned marks ctx as that of an instance start ahead of any
// invocation (Spec.MinInstances), which Lambda calls provisioned
// concurrency: a driver tells the function so (a lambda runtime sees
// AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency). A pool wraps
// the context of such starts; a start for an invocation is on-demand.
func WithProvisioned(ctx context.Context) context.Context {
	return context.WithValue(ctx, provisionedKey{}, true)
}

// Provisioned reports whether ctx was marked by WithProvisioned.
func Provisioned(ctx context.Context) bool {
	v, _ := ctx.Value(provisionedKey{}).(bool)
	return v
}
