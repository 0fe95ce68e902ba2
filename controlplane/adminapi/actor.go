package adminapi

import "context"

type actorKey struct{}

// WithActor returns a context carrying the authenticated caller's name,
// which the audit log records as who made a change.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// Actor returns the caller's name from ctx, "anonymous" when none was set.
func Actor(ctx context.Context) string {
	if s, ok := ctx.Value(actorKey{}).(string); ok && s != "" {
		return s
	}
	return "anonymous"
}
