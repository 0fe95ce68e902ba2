// Package kv owns the control plane's configuration store and service
// catalog: a small key-value interface over Consul KV (or an in-process map
// for `omnibridge dev`, non-durable), the documented key prefixes of desired
// directive state and operator overrides, a catalog watcher that turns
// Consul's catalog and health into the service picture with blocking
// queries, and the helpers a sidecar uses to register its instance with a
// health check and deregister it.
//
// Key layout (readable with `consul kv get -recurse omnibridge/`):
//
//	omnibridge/directives/desired/<service>            desired directive state, written by the control plane
//	omnibridge/directives/overrides/<service>/<kind>   operator overrides; they take precedence over desired state
//
// Consul being down must never look like "no services": the watcher keeps
// the last picture it had and reports nothing until Consul answers again.
package kv

// Key prefixes.
const (
	// PrefixDesired holds the control plane's desired directive state, one key per service.
	PrefixDesired = "omnibridge/directives/desired/"
	// PrefixOverrides holds operator overrides, one key per service and directive kind;
	// an override takes precedence over the desired state of the same kind.
	PrefixOverrides = "omnibridge/directives/overrides/"
)

// DesiredKey returns the desired-state key of a service.
func DesiredKey(service string) string { return PrefixDesired + service }

// OverrideKey returns the operator-override key of a service's directive kind.
func OverrideKey(service, kind string) string { return PrefixOverrides + service + "/" + kind }
