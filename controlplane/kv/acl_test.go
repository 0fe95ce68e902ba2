package kv_test

import (
	"testing"

	"github.com/omninode/bridge/controlplane/kv"
	"github.com/omninode/bridge/internal/testenv"
)

// TestConsulACLToken shows the control plane works against a Consul agent
// with ACLs on (default deny) when it is given a token through the standard
// CONSUL_HTTP_TOKEN variable, and that without one it gets a clear error
// rather than an empty answer.
func TestConsulACLToken(t *testing.T) {
	agent := testenv.ConsulACL(t)

	t.Setenv("CONSUL_HTTP_TOKEN", "")
	anon, err := kv.NewClient(agent.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.NewConsul(anon).Put(t.Context(), "omnibridge/directives/desired/acl-test", []byte("x")); err == nil {
		t.Fatal("write without a token succeeded against a default-deny agent")
	}

	t.Setenv("CONSUL_HTTP_TOKEN", testenv.ConsulACLToken)
	authed, err := kv.NewClient(agent.Addr())
	if err != nil {
		t.Fatal(err)
	}
	store := kv.NewConsul(authed)
	if err := store.Put(t.Context(), "omnibridge/directives/desired/acl-test", []byte("v1")); err != nil {
		t.Fatalf("write with the token: %v", err)
	}
	got, ok, err := store.Get(t.Context(), "omnibridge/directives/desired/acl-test")
	if err != nil || !ok || string(got) != "v1" {
		t.Fatalf("read with the token = %q, %v, %v", got, ok, err)
	}
	if _, _, err := kv.NewConsul(anon).Get(t.Context(), "omnibridge/directives/desired/acl-test"); err == nil {
		// Consul answers an anonymous read under default deny with 403 or as
		// not found; either way the value must not leak.
		v, ok, _ := kv.NewConsul(anon).Get(t.Context(), "omnibridge/directives/desired/acl-test")
		if ok || len(v) > 0 {
			t.Fatalf("anonymous read returned the value %q", v)
		}
	}
}
