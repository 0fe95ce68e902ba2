package kv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
)

// ServiceRegistration describes a sidecar's service instance in the catalog.
type ServiceRegistration struct {
	// ID is the instance id, unique per agent (e.g. the pod name). Required.
	ID string
	// Name is the service name. Required.
	Name string
	// Version is recorded as Meta["version"] and the tag "version=<v>".
	Version string
	// Address and Port the service is reached at (the sidecar's proxy port).
	Address string
	Port    int
	// Tags and Meta are added as given.
	Tags []string
	Meta map[string]string
	// HealthURL is an HTTP URL Consul polls for health (the sidecar's admin
	// /readyz); empty registers no check.
	HealthURL string
	// CheckInterval is how often Consul polls HealthURL; default 10s.
	CheckInterval time.Duration
	// DeregisterAfter removes an instance whose check stays critical this
	// long; default 1m.
	DeregisterAfter time.Duration
}

// Register registers the instance with the local agent (the client's
// address), with an HTTP health check on HealthURL.
func Register(ctx context.Context, client *api.Client, r ServiceRegistration) error {
	if r.ID == "" || r.Name == "" {
		return errors.New("kv: register: service id and name are required")
	}
	if r.CheckInterval == 0 {
		r.CheckInterval = 10 * time.Second
	}
	if r.DeregisterAfter == 0 {
		r.DeregisterAfter = time.Minute
	}
	meta := map[string]string{}
	for k, v := range r.Meta {
		meta[k] = v
	}
	tags := append([]string(nil), r.Tags...)
	if r.Version != "" {
		meta["version"] = r.Version
		tags = append(tags, "version="+r.Version)
	}
	reg := &api.AgentServiceRegistration{
		ID: r.ID, Name: r.Name, Address: r.Address, Port: r.Port, Tags: tags, Meta: meta,
	}
	if r.HealthURL != "" {
		reg.Check = &api.AgentServiceCheck{
			HTTP:                           r.HealthURL,
			Interval:                       r.CheckInterval.String(),
			Timeout:                        "2s",
			DeregisterCriticalServiceAfter: r.DeregisterAfter.String(),
		}
	}
	if err := client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
		return fmt.Errorf("register service %s: %w", r.ID, err)
	}
	return nil
}

// Deregister removes the instance from the local agent.
func Deregister(ctx context.Context, client *api.Client, id string) error {
	if err := client.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("deregister service %s: %w", id, err)
	}
	return nil
}

// RegisterFor registers the instance, blocks until ctx ends, then
// deregisters it (with a short timeout of its own). It is what a sidecar
// started with --consul runs beside its proxy; a failure to register is
// returned at once, a failure to deregister on the way out is returned too.
func RegisterFor(ctx context.Context, client *api.Client, r ServiceRegistration) error {
	if err := Register(ctx, client, r); err != nil {
		return err
	}
	<-ctx.Done()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return Deregister(dctx, client, r.ID)
}
