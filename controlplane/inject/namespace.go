package inject

import (
	"context"
	"errors"
)

// NamespaceLookup returns a namespace's labels and annotations. The control
// plane implements it against the Kubernetes API (with a cache); tests use
// [StaticNamespaces].
type NamespaceLookup interface {
	Namespace(ctx context.Context, name string) (labels, annotations map[string]string, err error)
}

// ErrNamespaceNotFound is returned by lookups for an unknown namespace.
var ErrNamespaceNotFound = errors.New("namespace not found")

// StaticNamespaces is a fixed NamespaceLookup: namespace name to its labels
// (also used as its annotations).
type StaticNamespaces map[string]map[string]string

var _ NamespaceLookup = StaticNamespaces(nil)

// Namespace implements NamespaceLookup.
func (s StaticNamespaces) Namespace(_ context.Context, name string) (map[string]string, map[string]string, error) {
	l, ok := s[name]
	if !ok {
		return nil, nil, ErrNamespaceNotFound
	}
	return l, l, nil
}

// namespaceEnabled reports whether a namespace's label or annotation
// enables injection.
func namespaceEnabled(labels, annotations map[string]string) bool {
	return labels[AnnotationInject] == Enabled || annotations[AnnotationInject] == Enabled
}
